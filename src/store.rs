//! What must survive a restart (DESIGN 3.1 `state.path`): users seen at login and their ClearML
//! mapping, behind the [`UserStore`] trait so a shared backend can be added; SQLite by default.

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
}
