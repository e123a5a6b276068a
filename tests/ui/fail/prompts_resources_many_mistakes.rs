use mcp_analytics::{complete, mcp_server, paid, prompt, resource};

struct Server;

#[mcp_server]
impl Server {
    #[prompt(nmae = "greeting")]
    fn greet(&self) -> String {
        "hello".into()
    }

    #[prompt(name = "greet")]
    async fn greet_again(&mut self) -> String {
        "hello".into()
    }

    #[resource(uri_template = "test://items/{id}/{kind}", mime_type = "json")]
    async fn item(&self, idd: String) -> String {
        idd
    }

    #[resource(uri = "items")]
    #[paid(reason = "money")]
    async fn items(&self) -> String {
        String::new()
    }

    #[complete(prompt = "greets", argument = "name")]
    async fn names(&self, value: &str, extra: &str) -> Vec<String> {
        vec![value.to_owned(), extra.to_owned()]
    }

    #[complete(resource = "test://items/{id}/{kind}", argument = "knid")]
    async fn kinds(&self) -> Vec<String> {
        Vec::new()
    }
}

fn main() {}
