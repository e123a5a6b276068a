//! [`UserDetails`]: how much of a caller's email and name analytics stores next to `user_id`.

/// How the caller's email and display name are stored (`MCP_ANALYTICS_USER_DETAILS`). The user
/// id (`Identity::subject`) is always stored; these only govern `user_email` and `user_name`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UserDetails {
    /// Not stored.
    Off,
    /// Stored with most characters hidden: `j***@example.com`, `J*** D***` (the default).
    #[default]
    Masked,
    /// Stored as given by the identity provider.
    Full,
}

impl UserDetails {
    /// Parses `off`, `masked` or `full` (also `false`/`no`/`none` for off, `true` for masked).
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "off" | "false" | "no" | "none" | "0" => Some(UserDetails::Off),
            "masked" | "mask" | "redacted" | "true" | "on" | "1" => Some(UserDetails::Masked),
            "full" | "plain" => Some(UserDetails::Full),
            _ => None,
        }
    }

    /// The email as stored under this setting.
    pub fn email(self, email: &str) -> Option<String> {
        match self {
            UserDetails::Off => None,
            UserDetails::Full => Some(email.to_owned()),
            UserDetails::Masked => Some(match email.rsplit_once('@') {
                Some((local, domain)) => format!("{}@{domain}", mask_word(local)),
                None => mask_word(email),
            }),
        }
    }

    /// The display name as stored under this setting.
    pub fn name(self, name: &str) -> Option<String> {
        match self {
            UserDetails::Off => None,
            UserDetails::Full => Some(name.to_owned()),
            UserDetails::Masked => Some(
                name.split_whitespace()
                    .map(mask_word)
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        }
    }
}

/// The first character and `***` (just `***` for an empty word).
fn mask_word(word: &str) -> String {
    let mut masked: String = word.chars().take(1).collect();
    masked.push_str("***");
    masked
}

#[cfg(test)]
mod tests {
    use super::UserDetails;

    #[test]
    fn masks_emails_and_names() {
        let masked = UserDetails::Masked;
        assert_eq!(
            masked.email("jane.doe@example.com").as_deref(),
            Some("j***@example.com")
        );
        assert_eq!(masked.email("no-at-sign").as_deref(), Some("n***"));
        assert_eq!(masked.email("@x.org").as_deref(), Some("***@x.org"));
        assert_eq!(masked.name("Jane  Doe").as_deref(), Some("J*** D***"));
        assert_eq!(masked.name("Élodie").as_deref(), Some("É***"));
        assert_eq!(UserDetails::Off.email("a@b.c"), None);
        assert_eq!(
            UserDetails::Full.name("Jane Doe").as_deref(),
            Some("Jane Doe")
        );
    }

    #[test]
    fn parses_settings() {
        assert_eq!(UserDetails::parse(" Full "), Some(UserDetails::Full));
        assert_eq!(UserDetails::parse("off"), Some(UserDetails::Off));
        assert_eq!(UserDetails::parse("masked"), Some(UserDetails::Masked));
        assert_eq!(UserDetails::parse("everything"), None);
        assert_eq!(UserDetails::default(), UserDetails::Masked);
    }
}
