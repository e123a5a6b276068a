//! The D1 schema: the analytics and payment tables of the native schema's migrations, in
//! order, as one SQL file for `wrangler d1 migrations apply` (committed as
//! `examples/workers/migrations/0001_mcp_analytics.sql`; a test keeps the two in step).
//! D1 refuses `PRAGMA user_version`, so the file records no version: wrangler's own
//! `d1_migrations` table does.

use crate::schema::MIGRATIONS;

/// The SQL creating every table on an empty D1 database.
pub fn migration() -> String {
    let mut sql = String::from(
        "-- mcp-analytics: the analytics and payment tables on Cloudflare D1.\n-- Generated from the native schema's migrations: regenerate with\n-- MCP_ANALYTICS_BLESS=1 cargo test -p mcp-analytics --lib d1::tests::the_committed_d1_migration\n",
    );
    for (index, migration) in MIGRATIONS.iter().enumerate() {
        sql.push_str(&format!("\n-- Migration {}\n", index + 1));
        sql.push_str(migration.trim_matches('\n'));
        sql.push('\n');
    }
    sql
}
