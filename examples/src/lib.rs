//! What the example servers share, so they behave alike: one command line (`--stdio`,
//! `--http ADDR`, nothing = HTTP on 127.0.0.1:8000, `--help`) and one way to log.
//!
//! Run them with `cargo run --example NAME [-- ARGS]`; the servers themselves live in
//! `examples/examples/`.

use std::{
    fmt,
    io::IsTerminal,
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
};

/// Where an example serves MCP when no argument is given.
pub const DEFAULT_HTTP_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8000));

/// How an example serves MCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Over stdin/stdout, for MCP clients that start the server themselves.
    Stdio,
    /// Over streamable HTTP at `http://{addr}/mcp`, with the dashboard at `/analytics`.
    Http(SocketAddr),
}

/// What the command line asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Serve MCP this way.
    Serve(Transport),
    /// Print the usage and exit.
    Help,
}

/// A command line the examples do not understand; its text says what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Reads the arguments after the program name: `--stdio`, `--http ADDR` (or `--http=ADDR`), or
/// nothing for HTTP on [`DEFAULT_HTTP_ADDR`]; `-h`/`--help` anywhere asks for the usage.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, UsageError> {
    let args: Vec<String> = args.into_iter().collect();
    if args.iter().any(|arg| arg == "-h" || arg == "--help") {
        return Ok(Command::Help);
    }
    let mut transport = None;
    let mut rest = args.into_iter();
    while let Some(arg) = rest.next() {
        let chosen = match arg.as_str() {
            "--stdio" => Transport::Stdio,
            "--http" => {
                let addr = rest.next().ok_or_else(|| {
                    UsageError("`--http` needs an address such as 127.0.0.1:8000".into())
                })?;
                Transport::Http(parse_addr(&addr)?)
            }
            other => match other.strip_prefix("--http=") {
                Some(addr) => Transport::Http(parse_addr(addr)?),
                None => return Err(UsageError(format!("unknown argument `{other}`"))),
            },
        };
        if transport.replace(chosen).is_some() {
            return Err(UsageError(
                "choose one of `--stdio` and `--http ADDR`, once".into(),
            ));
        }
    }
    Ok(Command::Serve(
        transport.unwrap_or(Transport::Http(DEFAULT_HTTP_ADDR)),
    ))
}

fn parse_addr(addr: &str) -> Result<SocketAddr, UsageError> {
    addr.parse().map_err(|_| {
        UsageError(format!(
            "`{addr}` is not an address such as 127.0.0.1:8000 (an IP address and a port)"
        ))
    })
}

/// The usage text of the example `name`, which does what `about` says.
pub fn usage(name: &str, about: &str) -> String {
    format!(
        "{about}

Usage: cargo run --example {name} [-- --stdio | -- --http ADDR]

Options:
      --http ADDR  serve MCP at http://ADDR/mcp and the dashboard at http://ADDR/analytics
                   (the default, on {DEFAULT_HTTP_ADDR})
      --stdio      serve MCP over stdin/stdout, for MCP clients that start the server
  -h, --help       print this help

Calls are recorded into ./mcp-analytics.db (MCP_ANALYTICS_DB); `cargo run -p mcp-analytics-cli --
report` and `-- dashboard` show them.
"
    )
}

/// The transport the process's arguments ask for. `--help` prints the usage to stdout and exits
/// with 0; a command line that is not understood prints the error and the usage to stderr and
/// exits with 2.
pub fn transport_from_args(name: &str, about: &str) -> Transport {
    // An argument that is not UTF-8 is passed on lossily: it is never a known option, so it is
    // reported as a usage error instead of a panic.
    let args = std::env::args_os()
        .skip(1)
        .map(|arg| arg.to_string_lossy().into_owned());
    match parse_args(args) {
        Ok(Command::Serve(transport)) => transport,
        Ok(Command::Help) => {
            print!("{}", usage(name, about));
            std::process::exit(0)
        }
        Err(error) => {
            eprint!("error: {error}\n\n{}", usage(name, about));
            std::process::exit(2)
        }
    }
}

/// Logs to stderr (stdout may carry the protocol) at `RUST_LOG`'s levels, `warn` by default,
/// coloured only when stderr is a terminal.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
}

/// What the stdio mode says about the dashboard, which it does not serve (no HTTP listener):
/// how to look at `database` instead.
pub fn stdio_dashboard_hint(database: Option<&mcp_analytics::Database>) -> String {
    // A PostgreSQL URL is not repeated: shown, it would hide its password.
    let db = match database {
        Some(mcp_analytics::Database::Sqlite(path)) => path.display().to_string(),
        Some(_) => "\"$MCP_ANALYTICS_DB\"".to_owned(),
        None => String::new(),
    };
    match database {
        Some(_) => format!(
            "dashboard: not served over stdio; run `cargo run -p mcp-analytics-cli -- dashboard \
             --db {db}`"
        ),
        None => "dashboard: not served over stdio (analytics has no database)".into(),
    }
}

/// Where the local test provider's payment pages are for an HTTP server on `addr`: each
/// `payment_required` answer links one page, `/pay/{id}` on the server itself.
pub fn payment_pages_line(addr: SocketAddr) -> String {
    if addr.port() == 0 {
        "payments: test payment pages at /pay/… on the MCP address below".into()
    } else {
        format!("payments: test payment pages at http://{addr}/pay/…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, UsageError> {
        parse_args(args.iter().map(|arg| (*arg).to_owned()))
    }

    fn http(addr: &str) -> Command {
        Command::Serve(Transport::Http(addr.parse().unwrap()))
    }

    #[test]
    fn no_arguments_serve_http_on_port_8000_of_loopback() {
        assert_eq!(parse(&[]), Ok(http("127.0.0.1:8000")));
    }

    #[test]
    fn stdio_and_http_with_an_address_are_understood() {
        assert_eq!(parse(&["--stdio"]), Ok(Command::Serve(Transport::Stdio)));
        assert_eq!(
            parse(&["--http", "127.0.0.1:9000"]),
            Ok(http("127.0.0.1:9000"))
        );
        assert_eq!(parse(&["--http=[::1]:0"]), Ok(http("[::1]:0")));
    }

    #[test]
    fn help_wins_wherever_it_is() {
        assert_eq!(parse(&["-h"]), Ok(Command::Help));
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert_eq!(parse(&["--stdio", "--help"]), Ok(Command::Help));
        assert_eq!(parse(&["--bogus", "-h"]), Ok(Command::Help));
    }

    #[test]
    fn unknown_arguments_and_positional_addresses_are_errors_naming_them() {
        let error = parse(&["--verbose"]).unwrap_err();
        assert!(error.to_string().contains("`--verbose`"), "{error}");
        let error = parse(&["127.0.0.1:9000"]).unwrap_err();
        assert!(error.to_string().contains("`127.0.0.1:9000`"), "{error}");
    }

    #[test]
    fn http_without_a_valid_address_is_an_error_saying_what_an_address_is() {
        let missing = parse(&["--http"]).unwrap_err();
        assert!(
            missing.to_string().contains("needs an address"),
            "{missing}"
        );
        let bad = parse(&["--http", "localhost:8000"]).unwrap_err();
        assert!(bad.to_string().contains("`localhost:8000`"), "{bad}");
    }

    #[test]
    fn two_transports_are_an_error() {
        assert!(parse(&["--stdio", "--http", "127.0.0.1:1"]).is_err());
        assert!(parse(&["--stdio", "--stdio"]).is_err());
    }

    #[test]
    fn usage_names_the_example_and_every_option() {
        let text = usage("paid", "A paid server.");
        assert!(text.starts_with("A paid server.\n"));
        for expected in [
            "--example paid",
            "--stdio",
            "--http ADDR",
            "-h, --help",
            "127.0.0.1:8000",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
    }

    #[test]
    fn payment_pages_are_named_by_the_address_when_it_is_known() {
        assert_eq!(
            payment_pages_line("127.0.0.1:8000".parse().unwrap()),
            "payments: test payment pages at http://127.0.0.1:8000/pay/…"
        );
        assert!(payment_pages_line("127.0.0.1:0".parse().unwrap()).contains("/pay/"));
    }

    #[test]
    fn the_stdio_hint_names_the_database_to_open() {
        let hint = stdio_dashboard_hint(Some(&mcp_analytics::Database::from("./x.db")));
        assert!(hint.contains("dashboard --db ./x.db"), "{hint}");
    }
}
