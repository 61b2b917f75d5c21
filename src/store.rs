//! What must survive a restart (DESIGN 3.1 `state.path`): users seen at login and their ClearML
//! mapping, behind the [`UserStore`] trait so a shared backend can be added; SQLite by default.
//! The admin plane's data (connections made at runtime, local groups, invites, the audit log)
//! sits behind [`ConnectionStore`], [`DirectoryStore`] and [`AuditLog`] in the same database.

pub mod shared;
pub mod sqlite;

/// One user as the proxy knows them: who logged in through which connection, and (with the
/// ClearML bridge) which ClearML user they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub provider: String,
    /// The mapped user id (`claims.user_id`).
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub clearml_id: Option<String>,
    pub clearml_role: Option<String>,
    /// Unix seconds.
    pub first_login: u64,
    pub last_login: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the state database at {path} could not be opened: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("state database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("the state database lock is poisoned")]
    Poisoned,
}

/// Users and their mappings.
pub trait UserStore: Send + Sync {
    fn get(&self, provider: &str, subject: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Insert or replace the record for `(provider, subject)`.
    fn put(&self, record: &UserRecord) -> Result<(), StoreError>;
    /// True when any connection's user has this email (case-insensitive).
    fn email_known(&self, email: &str) -> Result<bool, StoreError>;
    /// Operations of this store that failed so far (any caller, admin ones included), for the
    /// metrics.
    fn error_count(&self) -> u64 {
        0
    }
}

/// A connection created through the admin API. `settings` holds the connection's keys exactly
/// as for `providers.<id>` in the config file (secrets included; never returned by the API).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredConnection {
    pub id: String,
    /// `oidc` or `saml`.
    pub protocol: String,
    /// The provider preset (`keycloak`, `okta`, ...).
    pub preset: String,
    pub settings: serde_json::Value,
    pub active: bool,
    /// Unix seconds.
    pub created_at: u64,
    pub updated_at: u64,
}

/// An e-mail address invited to sign up (it counts as a known user for `create_new_users: false`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub email: String,
    pub invited_by: String,
    pub created_at: u64,
}

/// A local group: what `groups.prohibit_user_signup_if_not_in_group` matches IdP groups against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub description: Option<String>,
    pub created_by: String,
    pub created_at: u64,
}

/// One admin change. Never holds a secret: `detail` names changed keys, not their values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Unix seconds.
    pub at: u64,
    /// Who: the admin's e-mail or user id, or `admin-token`.
    pub actor: String,
    /// `connection.create`, `invite.delete`, ...
    pub action: String,
    pub target: String,
    pub detail: Option<String>,
}

/// Connections made through the admin API.
pub trait ConnectionStore: Send + Sync {
    fn list_connections(&self) -> Result<Vec<StoredConnection>, StoreError>;
    fn get_connection(&self, id: &str) -> Result<Option<StoredConnection>, StoreError>;
    /// False when a connection with this id already exists.
    fn insert_connection(&self, c: &StoredConnection) -> Result<bool, StoreError>;
    /// False when there is no connection with this id.
    fn update_connection(&self, c: &StoredConnection) -> Result<bool, StoreError>;
    /// False when there was no connection with this id.
    fn delete_connection(&self, id: &str) -> Result<bool, StoreError>;
}

/// Users seen, invites and local groups.
pub trait DirectoryStore: Send + Sync {
    /// Every user seen at login, most recent first.
    fn list_users(&self) -> Result<Vec<UserRecord>, StoreError>;
    fn list_invites(&self) -> Result<Vec<Invite>, StoreError>;
    /// False when the e-mail (case-insensitive) is already invited.
    fn add_invite(&self, invite: &Invite) -> Result<bool, StoreError>;
    fn delete_invite(&self, email: &str) -> Result<bool, StoreError>;
    fn is_invited(&self, email: &str) -> Result<bool, StoreError>;
    fn list_groups(&self) -> Result<Vec<Group>, StoreError>;
    /// False when a group with this name (case-insensitive) exists.
    fn add_group(&self, group: &Group) -> Result<bool, StoreError>;
    fn delete_group(&self, name: &str) -> Result<bool, StoreError>;
}

/// The audit log of admin changes.
pub trait AuditLog: Send + Sync {
    fn append(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// The newest `limit` entries, newest first.
    fn recent(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
}

/// Everything the admin plane stores.
pub trait AdminStore: ConnectionStore + DirectoryStore + AuditLog {}

impl<T: ConnectionStore + DirectoryStore + AuditLog> AdminStore for T {}
