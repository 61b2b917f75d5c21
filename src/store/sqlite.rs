//! The SQLite [`UserStore`]: one file at `state.path` (`:memory:` keeps nothing). Calls are
//! short indexed statements behind a mutex; they run on login paths only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use super::{StoreError, UserRecord, UserStore};

mod admin;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    provider     TEXT NOT NULL,
    subject      TEXT NOT NULL,
    email        TEXT,
    name         TEXT,
    clearml_id   TEXT,
    clearml_role TEXT,
    first_login  INTEGER NOT NULL,
    last_login   INTEGER NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX IF NOT EXISTS users_email ON users (email COLLATE NOCASE);
";

pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Failed operations so far (`sso_proxy_store_errors_total`).
    errors: AtomicU64,
}

impl SqliteStore {
    pub fn open(path: &str) -> Result<Self, StoreError> {
        let opened = if path == ":memory:" {
            Connection::open_in_memory()
        } else {
            Connection::open(path)
        };
        let conn = opened.map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;")
            .and_then(|()| conn.execute_batch(SCHEMA))
            .and_then(|()| conn.execute_batch(admin::SCHEMA))
            .map_err(|source| StoreError::Open {
                path: path.to_owned(),
                source,
            })?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            errors: AtomicU64::new(0),
        })
    }

    /// Every operation runs here, so every failure is counted here.
    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let result = match self.conn.lock() {
            Ok(conn) => f(&conn).map_err(StoreError::from),
            Err(_) => Err(StoreError::Poisoned),
        };
        if result.is_err() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl UserStore for SqliteStore {
    fn get(&self, provider: &str, subject: &str) -> Result<Option<UserRecord>, StoreError> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT email, name, clearml_id, clearml_role, first_login, last_login
                 FROM users WHERE provider = ?1 AND subject = ?2",
            )?
            .query_row(params![provider, subject], |row| {
                Ok(UserRecord {
                    provider: provider.to_owned(),
                    subject: subject.to_owned(),
                    email: row.get(0)?,
                    name: row.get(1)?,
                    clearml_id: row.get(2)?,
                    clearml_role: row.get(3)?,
                    first_login: to_u64(row.get(4)?),
                    last_login: to_u64(row.get(5)?),
                })
            })
            .optional()
        })
    }

    fn put(&self, r: &UserRecord) -> Result<(), StoreError> {
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO users (provider, subject, email, name, clearml_id, clearml_role, first_login, last_login)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (provider, subject) DO UPDATE SET
                   email = excluded.email, name = excluded.name, clearml_id = excluded.clearml_id,
                   clearml_role = excluded.clearml_role, last_login = excluded.last_login",
            )?
            .execute(params![
                    r.provider,
                    r.subject,
                    r.email,
                    r.name,
                    r.clearml_id,
                    r.clearml_role,
                    to_i64(r.first_login),
                to_i64(r.last_login)
            ])
            .map(|_| ())
        })
    }

    fn email_known(&self, email: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            c.prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE email = ?1 COLLATE NOCASE)")?
                .query_row(params![email], |row| row.get::<_, bool>(0))
        })
    }

    fn error_count(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(subject: &str, email: &str) -> UserRecord {
        UserRecord {
            provider: "kc".into(),
            subject: subject.into(),
            email: Some(email.into()),
            name: None,
            clearml_id: None,
            clearml_role: None,
            first_login: 10,
            last_login: 10,
        }
    }

    #[test]
    fn records_round_trip_and_update() {
        let store = SqliteStore::open(":memory:").unwrap();
        assert_eq!(store.get("kc", "u1").unwrap(), None);
        let mut r = record("u1", "A@example.com");
        store.put(&r).unwrap();
        assert_eq!(store.get("kc", "u1").unwrap(), Some(r.clone()));
        r.clearml_id = Some("cid".into());
        r.last_login = 20;
        store.put(&r).unwrap();
        let got = store.get("kc", "u1").unwrap().unwrap();
        assert_eq!(
            (got.clearml_id.as_deref(), got.first_login, got.last_login),
            (Some("cid"), 10, 20)
        );
        assert!(store.email_known("a@EXAMPLE.com").unwrap());
        assert!(!store.email_known("b@example.com").unwrap());
    }

    #[test]
    fn failed_operations_are_counted() {
        let store = SqliteStore::open(":memory:").unwrap();
        store.get("kc", "u1").unwrap();
        assert_eq!(store.error_count(), 0);
        store.with(|c| c.execute_batch("DROP TABLE users")).unwrap();
        assert!(store.get("kc", "u1").is_err());
        assert!(store.email_known("a@example.com").is_err());
        assert_eq!(store.error_count(), 2);
    }

    #[test]
    fn data_survives_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let path = path.to_str().unwrap();
        SqliteStore::open(path)
            .unwrap()
            .put(&record("u2", "b@example.com"))
            .unwrap();
        let again = SqliteStore::open(path).unwrap();
        assert!(again.get("kc", "u2").unwrap().is_some());
    }
}
