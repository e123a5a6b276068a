#[mcp_server(instructions = "Weather data.", analytics = self.analytics)]
impl Weather {
    #[mcp_analytics::tool(name = "get_weather", title = "Get weather", meta = serde_json::json!({"tier": "free"}))]
    async fn weather(&self, args: City) -> Json<Forecast> {
        Json(Forecast::default())
    }
}
