//! The admin plane's tables in the SQLite store: connections made at runtime (settings as JSON,
//! secrets included), local groups, invites and the audit log.

use rusqlite::{params, OptionalExtension, Row};

use super::{to_i64, to_u64, SqliteStore};
use crate::store::{
    AuditEntry, AuditLog, ConnectionStore, DirectoryStore, Group, Invite, StoreError,
    StoredConnection, UserRecord,
};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS connections (
    id         TEXT PRIMARY KEY,
    protocol   TEXT NOT NULL,
    preset     TEXT NOT NULL,
    settings   TEXT NOT NULL,
    active     INTEGER NOT NULL,
    source     TEXT NOT NULL DEFAULT 'admin',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS local_groups (
    name        TEXT PRIMARY KEY COLLATE NOCASE,
    description TEXT,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS invites (
    email      TEXT PRIMARY KEY COLLATE NOCASE,
    invited_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_log (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT
);
";

const CONNECTION_COLUMNS: &str = "id, protocol, preset, settings, active, created_at, updated_at";

fn connection(row: &Row<'_>) -> rusqlite::Result<StoredConnection> {
    let settings: String = row.get(3)?;
    let settings = serde_json::from_str(&settings).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(StoredConnection {
        id: row.get(0)?,
        protocol: row.get(1)?,
        preset: row.get(2)?,
        settings,
        active: row.get(4)?,
        created_at: to_u64(row.get(5)?),
        updated_at: to_u64(row.get(6)?),
    })
}

impl ConnectionStore for SqliteStore {
    fn list_connections(&self) -> Result<Vec<StoredConnection>, StoreError> {
        self.with(|c| {
            let sql = format!("SELECT {CONNECTION_COLUMNS} FROM connections ORDER BY id");
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map([], connection)?;
            rows.collect()
        })
    }

    fn get_connection(&self, id: &str) -> Result<Option<StoredConnection>, StoreError> {
        self.with(|c| {
            let sql = format!("SELECT {CONNECTION_COLUMNS} FROM connections WHERE id = ?1");
            c.query_row(&sql, params![id], connection).optional()
        })
    }

    fn insert_connection(&self, s: &StoredConnection) -> Result<bool, StoreError> {
        let settings = s.settings.to_string();
        self.with(|c| {
            c.execute(
                "INSERT INTO connections (id, protocol, preset, settings, active, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
                params![
                    s.id,
                    s.protocol,
                    s.preset,
                    settings,
                    s.active,
                    to_i64(s.created_at),
                    to_i64(s.updated_at)
                ],
            )
            .map(|n| n == 1)
        })
    }

    fn update_connection(&self, s: &StoredConnection) -> Result<bool, StoreError> {
        let settings = s.settings.to_string();
        self.with(|c| {
            c.execute(
                "UPDATE connections SET protocol = ?2, preset = ?3, settings = ?4, active = ?5,
                 updated_at = ?6 WHERE id = ?1",
                params![
                    s.id,
                    s.protocol,
                    s.preset,
                    settings,
                    s.active,
                    to_i64(s.updated_at)
                ],
            )
            .map(|n| n == 1)
        })
    }

    fn delete_connection(&self, id: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute("DELETE FROM connections WHERE id = ?1", params![id])
                .map(|n| n == 1)
        })
    }
}

impl DirectoryStore for SqliteStore {
    fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT provider, subject, email, name, clearml_id, clearml_role, first_login, last_login
                 FROM users ORDER BY last_login DESC, provider, subject",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok(UserRecord {
                    provider: row.get(0)?,
                    subject: row.get(1)?,
                    email: row.get(2)?,
                    name: row.get(3)?,
                    clearml_id: row.get(4)?,
                    clearml_role: row.get(5)?,
                    first_login: to_u64(row.get(6)?),
                    last_login: to_u64(row.get(7)?),
                })
            })?;
            rows.collect()
        })
    }

    fn list_invites(&self) -> Result<Vec<Invite>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT email, invited_by, created_at FROM invites ORDER BY created_at DESC, email",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok(Invite {
                    email: row.get(0)?,
                    invited_by: row.get(1)?,
                    created_at: to_u64(row.get(2)?),
                })
            })?;
            rows.collect()
        })
    }

    fn add_invite(&self, i: &Invite) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO invites (email, invited_by, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (email) DO NOTHING",
                params![i.email, i.invited_by, to_i64(i.created_at)],
            )
            .map(|n| n == 1)
        })
    }

    fn delete_invite(&self, email: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute("DELETE FROM invites WHERE email = ?1", params![email])
                .map(|n| n == 1)
        })
    }

    fn is_invited(&self, email: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM invites WHERE email = ?1)",
                params![email],
                |row| row.get::<_, bool>(0),
            )
        })
    }

    fn list_groups(&self) -> Result<Vec<Group>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT name, description, created_by, created_at FROM local_groups ORDER BY name",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok(Group {
                    name: row.get(0)?,
                    description: row.get(1)?,
                    created_by: row.get(2)?,
                    created_at: to_u64(row.get(3)?),
                })
            })?;
            rows.collect()
        })
    }

    fn add_group(&self, g: &Group) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO local_groups (name, description, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING",
                params![g.name, g.description, g.created_by, to_i64(g.created_at)],
            )
            .map(|n| n == 1)
        })
    }

    fn delete_group(&self, name: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute("DELETE FROM local_groups WHERE name = ?1", params![name])
                .map(|n| n == 1)
        })
    }
}

impl AuditLog for SqliteStore {
    fn append(&self, e: &AuditEntry) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![to_i64(e.at), e.actor, e.action, e.target, e.detail],
            )
            .map(|_| ())
        })
    }

    fn recent(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT at, actor, action, target, detail FROM audit_log ORDER BY seq DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map(params![limit], |row| {
                Ok(AuditEntry {
                    at: to_u64(row.get(0)?),
                    actor: row.get(1)?,
                    action: row.get(2)?,
                    target: row.get(3)?,
                    detail: row.get(4)?,
                })
            })?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conn(id: &str, active: bool) -> StoredConnection {
        StoredConnection {
            id: id.into(),
            protocol: "oidc".into(),
            preset: "custom".into(),
            settings: json!({"client_id": "c", "client_secret": "s3cret"}),
            active,
            created_at: 1,
            updated_at: 2,
        }
    }

    #[test]
    fn connections_round_trip_update_and_delete() {
        let store = SqliteStore::open(":memory:").unwrap();
        assert!(store.insert_connection(&conn("a", true)).unwrap());
        assert!(!store.insert_connection(&conn("a", false)).unwrap());
        assert_eq!(store.get_connection("a").unwrap(), Some(conn("a", true)));
        let mut changed = conn("a", false);
        changed.updated_at = 9;
        assert!(store.update_connection(&changed).unwrap());
        assert!(!store.update_connection(&conn("zz", true)).unwrap());
        let got = store.get_connection("a").unwrap().unwrap();
        assert_eq!((got.active, got.created_at, got.updated_at), (false, 1, 9));
        assert_eq!(store.list_connections().unwrap().len(), 1);
        assert!(store.delete_connection("a").unwrap());
        assert!(!store.delete_connection("a").unwrap());
        assert!(store.list_connections().unwrap().is_empty());
    }

    #[test]
    fn invites_and_groups_are_case_insensitive() {
        let store = SqliteStore::open(":memory:").unwrap();
        let invite = Invite {
            email: "Bob@Example.com".into(),
            invited_by: "alice".into(),
            created_at: 5,
        };
        assert!(store.add_invite(&invite).unwrap());
        assert!(!store.add_invite(&invite).unwrap());
        assert!(store.is_invited("bob@example.COM").unwrap());
        assert!(store.delete_invite("BOB@example.com").unwrap());
        assert!(!store.is_invited("bob@example.com").unwrap());
        let group = Group {
            name: "ML-Team".into(),
            description: None,
            created_by: "alice".into(),
            created_at: 5,
        };
        assert!(store.add_group(&group).unwrap());
        let lower = Group {
            name: "ml-team".into(),
            ..group
        };
        assert!(!store.add_group(&lower).unwrap());
        assert_eq!(store.list_groups().unwrap().len(), 1);
        assert!(store.delete_group("ml-TEAM").unwrap());
    }

    #[test]
    fn audit_log_lists_newest_first() {
        let store = SqliteStore::open(":memory:").unwrap();
        for n in 0..3 {
            let entry = AuditEntry {
                at: n,
                actor: "alice".into(),
                action: "group.create".into(),
                target: format!("g{n}"),
                detail: None,
            };
            store.append(&entry).unwrap();
        }
        let got = store.recent(2).unwrap();
        assert_eq!(got.iter().map(|e| e.at).collect::<Vec<_>>(), vec![2, 1]);
    }
}
