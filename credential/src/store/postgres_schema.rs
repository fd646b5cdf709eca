//! The PostgreSQL store's tables, versioned and migrated under an advisory lock, so processes that
//! start at once migrate one after the other and a database written by a newer version is refused
//! without being touched. Statements are unnamed (nothing is prepared), so a migration runs
//! through a pooler in transaction mode too.

use tokio_postgres::Client;
use tokio_postgres::types::Type;

use super::postgres_connection::storage;
use crate::{Error, Result};

/// The schema this build reads and writes.
pub(crate) const SCHEMA_VERSION: i64 = 3;

/// The advisory lock migrations hold: "credschm" in ASCII.
const MIGRATION_LOCK: i64 = 0x6372_6564_7363_686d;

const MIGRATIONS: [&str; 3] = [
    // Ids compare byte by byte (`COLLATE "C"`), as everywhere else, whatever the database's locale.
    "CREATE TABLE credential_records (
        id          text COLLATE \"C\" PRIMARY KEY,
        kind        text NOT NULL,
        environment text NOT NULL,
        state       text NOT NULL,
        revision    bigint NOT NULL,
        record      bytea NOT NULL
    );
    CREATE INDEX credential_records_by_kind ON credential_records (kind, id);
    CREATE TABLE credential_audit (
        seq         bigserial PRIMARY KEY,
        time_ns     bigint NOT NULL,
        principal   text NOT NULL,
        credential  text NOT NULL,
        environment text NOT NULL,
        action      text NOT NULL,
        outcome     text NOT NULL,
        version     bigint,
        error       text,
        reason      text,
        count       bigint NOT NULL DEFAULT 1,
        until_ns    bigint
    );
    CREATE INDEX credential_audit_by_credential ON credential_audit (credential, seq);",
    // Which master keys the live records use, kept by trigger in the writing transaction, so a
    // manager checks its key ring without reading the records. Rows written before this version
    // have an empty key id (unknown) until their next write; while a live one is left, the set
    // is not vouched for. Updates fire the trigger only when a record's key, liveness or
    // environment changes (a rekey, a revoke), not on every write.
    "ALTER TABLE credential_records ADD COLUMN key_id text NOT NULL DEFAULT '';
    CREATE INDEX credential_records_without_key_id ON credential_records (environment)
        WHERE key_id = '';
    CREATE TABLE credential_key_usage (
        environment text NOT NULL,
        key_id      text NOT NULL,
        records     bigint NOT NULL,
        PRIMARY KEY (environment, key_id)
    );
    CREATE FUNCTION credential_key_usage_count() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.state <> 'revoked' AND OLD.key_id <> '' THEN
            UPDATE credential_key_usage SET records = records - 1
                WHERE environment = OLD.environment AND key_id = OLD.key_id;
            DELETE FROM credential_key_usage
                WHERE environment = OLD.environment AND key_id = OLD.key_id AND records <= 0;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.state <> 'revoked' AND NEW.key_id <> '' THEN
            INSERT INTO credential_key_usage (environment, key_id, records)
                VALUES (NEW.environment, NEW.key_id, 1)
                ON CONFLICT (environment, key_id)
                DO UPDATE SET records = credential_key_usage.records + 1;
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER credential_key_usage_written AFTER INSERT OR DELETE ON credential_records
        FOR EACH ROW EXECUTE FUNCTION credential_key_usage_count();
    CREATE TRIGGER credential_key_usage_changed AFTER UPDATE ON credential_records
        FOR EACH ROW WHEN (OLD.key_id IS DISTINCT FROM NEW.key_id
            OR (OLD.state = 'revoked') IS DISTINCT FROM (NEW.state = 'revoked')
            OR OLD.environment IS DISTINCT FROM NEW.environment)
        EXECUTE FUNCTION credential_key_usage_count();",
    // The record revision a change writes, which restore checks compare stored records with.
    "ALTER TABLE credential_audit ADD COLUMN revision bigint;",
];

/// Brings the schema up to [`SCHEMA_VERSION`] in one transaction, and returns the name of the
/// PostgreSQL schema the tables are in (the first of the connection's search path).
///
/// # Errors
/// [`Error::UnsupportedSchema`] for a database from a newer version (rolled back untouched), or a
/// storage error.
pub(crate) async fn migrate(client: &mut Client) -> Result<String> {
    let transaction = client.transaction().await.map_err(storage)?;
    let schema: Option<String> =
        transaction.query_typed_one("SELECT current_schema()", &[]).await.map_err(storage)?.get(0);
    let schema = schema.ok_or(Error::Config {
        reason: "the PostgreSQL search path names no existing schema to keep the tables in",
    })?;
    transaction
        .execute_typed("SELECT pg_advisory_xact_lock($1)", &[(&MIGRATION_LOCK, Type::INT8)])
        .await
        .map_err(storage)?;
    let exists: bool = transaction
        .query_typed_one("SELECT to_regclass('credential_schema') IS NOT NULL", &[])
        .await
        .map_err(storage)?
        .get(0);
    let found: i64 = if exists {
        let row = transaction
            .query_typed_opt("SELECT version FROM credential_schema", &[])
            .await
            .map_err(storage)?;
        row.map_or(0, |row| row.get(0))
    } else {
        transaction
            .batch_execute(
                "CREATE TABLE credential_schema (
                    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
                    version  bigint NOT NULL
                )",
            )
            .await
            .map_err(storage)?;
        0
    };
    if found > SCHEMA_VERSION {
        return Err(Error::UnsupportedSchema { found, supported: SCHEMA_VERSION });
    }
    for migration in MIGRATIONS.iter().skip(usize::try_from(found).unwrap_or(0)) {
        transaction.batch_execute(migration).await.map_err(storage)?;
    }
    if found < SCHEMA_VERSION {
        transaction
            .execute_typed(
                "INSERT INTO credential_schema (version) VALUES ($1)
                 ON CONFLICT (only_row) DO UPDATE SET version = excluded.version",
                &[(&SCHEMA_VERSION, Type::INT8)],
            )
            .await
            .map_err(storage)?;
    }
    transaction.commit().await.map_err(storage)?;
    Ok(schema)
}
