//! IAM's roles and policies, and STS's sessions, as the control plane keeps them: stored
//! and returned, never enforced. Each role (with its inline policies, attached policy
//! ARNs and tags) is one [`ResourceStore`] document of kind `iam.role`; each customer
//! managed policy (with its versions) one of kind `iam.policy`; each session that
//! `AssumeRole` handed out one of kind `sts.session`. Documents are keyed by the name in
//! lower case, since IAM names are unique regardless of case.
//!
//! Every input is bounded as IAM bounds it (names, paths, descriptions, policy sizes,
//! tags, page sizes), with IAM's error codes and wording; nothing here knows of HTTP.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

use crate::storage::{ResourceStore, StorageError};

/// Resource kinds of this module's documents.
pub const ROLE_KIND: &str = "iam.role";
pub const POLICY_KIND: &str = "iam.policy";
pub const SESSION_KIND: &str = "sts.session";

/// Largest policy document a request may carry (the API's member constraint).
pub const MAX_DOCUMENT_CHARS: usize = 131_072;
/// Inline policies of one role together, white space not counted (IAM's quota).
pub const MAX_INLINE_ROLE_POLICY_CHARS: usize = 10_240;
/// One managed policy version, white space not counted.
pub const MAX_MANAGED_POLICY_CHARS: usize = 6_144;
/// A role's trust policy, white space not counted (IAM's quota at its largest).
pub const MAX_TRUST_POLICY_CHARS: usize = 4_096;
/// Tags on one role or policy.
pub const MAX_TAGS: usize = 50;
/// Managed policies attached to one role (IAM's quota at its largest).
pub const MAX_ATTACHED_POLICIES: usize = 20;
/// Versions kept of one managed policy.
pub const MAX_POLICY_VERSIONS: usize = 5;
/// Sessions kept at once; the oldest go first past it.
const MAX_SESSIONS: usize = 10_000;

/// Why an IAM or STS call failed; the wire edge maps each to its code and status.
#[derive(Debug, thiserror::Error)]
pub enum IamError {
    #[error("{0}")]
    NoSuchEntity(String),
    #[error("{0}")]
    EntityAlreadyExists(String),
    #[error("{0}")]
    DeleteConflict(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl IamError {
    /// IAM's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoSuchEntity(_) => "NoSuchEntity",
            Self::EntityAlreadyExists(_) => "EntityAlreadyExists",
            Self::DeleteConflict(_) => "DeleteConflict",
            Self::LimitExceeded(_) => "LimitExceeded",
            Self::Validation(_) => "ValidationError",
            Self::InvalidInput(_) => "InvalidInput",
            Self::MalformedPolicyDocument(_) => "MalformedPolicyDocument",
            Self::AccessDenied(_) => "AccessDenied",
            Self::Storage(_) => "ServiceFailure",
        }
    }

    /// The HTTP status IAM answers it with.
    pub fn status(&self) -> u16 {
        match self {
            Self::NoSuchEntity(_) => 404,
            Self::AccessDenied(_) => 403,
            Self::EntityAlreadyExists(_) | Self::DeleteConflict(_) | Self::LimitExceeded(_) => 409,
            Self::Storage(_) => 500,
            _ => 400,
        }
    }
}

type Result<T> = std::result::Result<T, IamError>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// A role as kept in the resource store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleDoc {
    pub name: String,
    pub path: String,
    pub role_id: String,
    pub create_date: String,
    /// The trust policy, exactly as given.
    pub assume_role_policy: String,
    #[serde(default)]
    pub description: Option<String>,
    pub max_session_duration: u32,
    #[serde(default)]
    pub permissions_boundary: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Inline policies by name, documents exactly as given.
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    /// ARNs of attached managed policies, in attachment order.
    #[serde(default)]
    pub attached_policies: Vec<String>,
}

/// One version of a managed policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyVersionDoc {
    pub version_id: String,
    pub document: String,
    pub create_date: String,
}

/// A customer managed policy as kept in the resource store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyDoc {
    pub name: String,
    pub path: String,
    pub policy_id: String,
    pub create_date: String,
    pub update_date: String,
    #[serde(default)]
    pub description: Option<String>,
    pub default_version: String,
    pub versions: Vec<PolicyVersionDoc>,
    /// The number the next version takes (`v{n}`); never reused.
    pub next_version: u32,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// A session `AssumeRole` handed out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionDoc {
    pub access_key_id: String,
    pub role_arn: String,
    pub assumed_role_id: String,
    pub session_name: String,
    pub expiration_ms: u64,
}

/// What `AssumeRole` answers.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub session: SessionDoc,
    pub assumed_role_arn: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: String,
}

/// Who signed a request, as `GetCallerIdentity` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub arn: String,
    pub user_id: String,
    pub account: String,
}

/// One page of a listing; `marker` is where the next page starts, when there is one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub marker: Option<String>,
}

/// A listing's `Marker` and `MaxItems`.
#[derive(Debug, Clone, Default)]
pub struct Paging {
    pub marker: Option<String>,
    pub max_items: Option<u32>,
}

/// CreateRole's settings.
#[derive(Debug, Clone, Default)]
pub struct NewRole {
    pub name: String,
    pub path: Option<String>,
    pub assume_role_policy: String,
    pub description: Option<String>,
    pub max_session_duration: Option<u32>,
    pub permissions_boundary: Option<String>,
    pub tags: Vec<Tag>,
}

/// CreatePolicy's settings.
#[derive(Debug, Clone, Default)]
pub struct NewPolicy {
    pub name: String,
    pub path: Option<String>,
    pub document: String,
    pub description: Option<String>,
    pub tags: Vec<Tag>,
}

/// Control-plane calls change documents read-modify-write: one at a time.
static LOCK: Mutex<()> = Mutex::new(());

fn guard() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// IAM and STS over the resource store, for one account.
pub struct Iam {
    resources: Arc<dyn ResourceStore>,
    account_id: String,
}

impl std::fmt::Debug for Iam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iam")
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

/// Now, as IAM writes dates: `2026-12-01T09:00:00Z`.
pub fn iso_now() -> String {
    iso_seconds(crate::stream::now_ms())
}

/// An instant in milliseconds as `2026-12-01T09:00:00Z`.
pub fn iso_seconds(ms: u64) -> String {
    let iso = crate::mapping::dead_letter::iso8601(ms - ms % 1000);
    iso.replace(".000Z", "Z")
}

/// `len` characters from IAM's id alphabet (upper-case letters and 2-7), random.
fn random_chars(len: usize) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in uuid::Uuid::new_v4().as_bytes() {
            if out.len() == len {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(b & 31)]));
        }
    }
    out
}

/// A unique id in IAM's shape: the prefix (`AROA`, `ANPA`, `ASIA`...) and 17 characters.
pub fn unique_id(prefix: &str) -> String {
    format!("{prefix}{}", random_chars(17))
}

/// A value as a validation message shows it: bounded, so that a hostile input is not
/// echoed whole.
fn shown(value: &str) -> String {
    const MAX: usize = 128;
    match value.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &value[..at]),
        None => value.to_owned(),
    }
}

fn constraint(value: &str, member: &str, rule: &str) -> IamError {
    IamError::Validation(format!(
        "1 validation error detected: Value '{}' at '{member}' failed to satisfy constraint: Member {rule}",
        shown(value)
    ))
}

/// Checks a length bound in characters.
fn check_length(value: &str, member: &str, min: usize, max: usize) -> Result<()> {
    check_bounds(value, value.chars().count(), member, "length", min, max)
}

/// `measure` (a length or a value, as `what` says) within `min..=max`, in AWS's words
/// when not.
fn check_bounds(
    value: &str,
    measure: usize,
    member: &str,
    what: &str,
    min: usize,
    max: usize,
) -> Result<()> {
    let rule = if measure < min {
        format!("must have {what} greater than or equal to {min}")
    } else if measure > max {
        format!("must have {what} less than or equal to {max}")
    } else {
        return Ok(());
    };
    Err(constraint(value, member, &rule))
}

/// IAM's names: `[\w+=,.@-]+` (ASCII word characters), `1..=max` long.
pub fn check_name(value: &str, member: &str, max: usize) -> Result<()> {
    check_length(value, member, 1, max)?;
    let ok = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
    if !ok {
        return Err(constraint(
            value,
            member,
            "must satisfy regular expression pattern: [\\w+=,.@-]+",
        ));
    }
    Ok(())
}

/// IAM's paths: `/`, or `/` + printable ASCII + `/`, at most 512.
pub fn check_path(value: &str, member: &str) -> Result<()> {
    check_length(value, member, 1, 512)?;
    let ok = value == "/"
        || (value.len() >= 2
            && value.starts_with('/')
            && value.ends_with('/')
            && value.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    if !ok {
        return Err(IamError::Validation(
            "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.".into(),
        ));
    }
    Ok(())
}

/// A path prefix for listings: `/` first, printable ASCII.
pub fn check_path_prefix(value: &str) -> Result<()> {
    check_length(value, "pathPrefix", 1, 512)?;
    if !value.starts_with('/') || !value.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(IamError::Validation(
            "The specified value for pathPrefix is invalid. It must begin with / and contain only alphanumeric characters and/or / characters.".into(),
        ));
    }
    Ok(())
}

fn check_description(value: &str) -> Result<()> {
    check_length(value, "description", 0, 1000)?;
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(constraint(
            value,
            "description",
            "must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u007E\\u00A1-\\u00FF]*",
        ));
    }
    Ok(())
}

/// A policy document: at most [`MAX_DOCUMENT_CHARS`], a JSON object, and within `quota`
/// characters not counting white space (`quota_message` names the quota when not).
pub fn check_policy_document(
    document: &str,
    member: &str,
    quota: usize,
    quota_message: &str,
) -> Result<()> {
    check_length(document, member, 1, MAX_DOCUMENT_CHARS)?;
    match serde_json::from_str::<serde_json::Value>(document) {
        Ok(serde_json::Value::Object(_)) => {}
        Ok(_) => {
            return Err(IamError::MalformedPolicyDocument(
                "Syntax errors in policy.".into(),
            ));
        }
        Err(_) => {
            return Err(IamError::MalformedPolicyDocument(
                "This policy contains invalid Json".into(),
            ));
        }
    }
    if significant_chars(document) > quota {
        return Err(IamError::LimitExceeded(quota_message.to_owned()));
    }
    Ok(())
}

/// Characters IAM counts against its policy quotas: all but white space.
fn significant_chars(document: &str) -> usize {
    document.chars().filter(|c| !c.is_whitespace()).count()
}

/// Tags: at most [`MAX_TAGS`], keys 1-128 and values 0-256 of IAM's tag characters,
/// no key twice (regardless of case).
pub fn check_tags(tags: &[Tag]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(IamError::LimitExceeded(format!(
            "Cannot exceed quota for TagsPerRole: {MAX_TAGS}."
        )));
    }
    let tag_char = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
    let mut seen = std::collections::HashSet::new();
    for tag in tags {
        check_length(&tag.key, "tags.member.key", 1, 128)?;
        check_length(&tag.value, "tags.member.value", 0, 256)?;
        if !tag.key.chars().all(tag_char) {
            return Err(constraint(
                &tag.key,
                "tags.member.key",
                "must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+",
            ));
        }
        if !tag.value.chars().all(tag_char) {
            return Err(constraint(
                &tag.value,
                "tags.member.value",
                "must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*",
            ));
        }
        if !seen.insert(tag.key.to_lowercase()) {
            return Err(IamError::InvalidInput(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.".into(),
            ));
        }
    }
    Ok(())
}

/// An ARN as IAM checks one given as a parameter.
fn check_arn(arn: &str, member: &str) -> Result<()> {
    check_length(arn, member, 20, 2048)?;
    if !arn.starts_with("arn:") || arn.split(':').count() < 6 {
        return Err(IamError::InvalidInput(format!(
            "ARN {} is not valid.",
            shown(arn)
        )));
    }
    Ok(())
}

/// `MaxItems`: 1-1000, 100 when absent.
fn page_size(paging: &Paging) -> Result<usize> {
    let n = paging.max_items.unwrap_or(100);
    check_range(n, "maxItems", 1, 1000)?;
    Ok(n as usize)
}

/// A number within `min..=max`, in AWS's words when not.
fn check_range(value: u32, member: &str, min: u32, max: u32) -> Result<()> {
    let (value, min, max) = (value as usize, min as usize, max as usize);
    check_bounds(&value.to_string(), value, member, "value", min, max)
}

/// One page of `items` (sorted by `key`): those from the marker on, at most MaxItems;
/// the next page's marker is the key of the first item left out.
pub fn paginate<T>(items: Vec<T>, key: impl Fn(&T) -> String, paging: &Paging) -> Result<Page<T>> {
    let size = page_size(paging)?;
    if let Some(m) = &paging.marker {
        check_length(m, "marker", 1, 320)?;
    }
    let mut rest = items
        .into_iter()
        .skip_while(|t| paging.marker.as_ref().is_some_and(|m| key(t) < *m));
    let page: Vec<T> = rest.by_ref().take(size).collect();
    let marker = rest.next().map(|t| key(&t));
    Ok(Page {
        items: page,
        marker,
    })
}

/// The parts of a managed policy ARN: account, path, name.
fn parse_policy_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let _partition = parts.next()?;
    if parts.next()? != "iam" {
        return None;
    }
    let _region = parts.next()?;
    let account = parts.next()?;
    let resource = parts.next()?.strip_prefix("policy")?;
    if !resource.starts_with('/') {
        return None;
    }
    let at = resource.rfind('/')?;
    Some((account, &resource[..=at], &resource[at + 1..]))
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| IamError::Storage(StorageError::Io(e.to_string())))
}

fn decode<T: for<'de> Deserialize<'de>>(kind: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| IamError::Storage(StorageError::Corrupt(format!("{kind} document: {e}"))))
}

impl Iam {
    pub fn new(resources: Arc<dyn ResourceStore>, account_id: impl Into<String>) -> Self {
        Self {
            resources,
            account_id: account_id.into(),
        }
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// `arn:aws:iam::ACCOUNT:role{path}{name}`.
    pub fn role_arn(&self, role: &RoleDoc) -> String {
        format!(
            "arn:aws:iam::{}:role{}{}",
            self.account_id, role.path, role.name
        )
    }

    /// `arn:aws:iam::ACCOUNT:policy{path}{name}`.
    pub fn policy_arn(&self, policy: &PolicyDoc) -> String {
        format!(
            "arn:aws:iam::{}:policy{}{}",
            self.account_id, policy.path, policy.name
        )
    }

    fn load_role(&self, name: &str) -> Result<RoleDoc> {
        check_name(name, "roleName", 64)?;
        match self
            .resources
            .get_resource(ROLE_KIND, &name.to_ascii_lowercase())?
        {
            Some(bytes) => decode(ROLE_KIND, &bytes),
            None => Err(IamError::NoSuchEntity(format!(
                "The role with name {name} cannot be found."
            ))),
        }
    }

    fn save_role(&self, role: &RoleDoc) -> Result<()> {
        self.resources
            .put_resource(ROLE_KIND, &role.name.to_ascii_lowercase(), &json(role)?)?;
        Ok(())
    }

    /// Reads a role, changes it, writes it back.
    fn change_role(
        &self,
        name: &str,
        f: impl FnOnce(&mut RoleDoc) -> Result<()>,
    ) -> Result<RoleDoc> {
        let _g = guard();
        let mut role = self.load_role(name)?;
        f(&mut role)?;
        self.save_role(&role)?;
        Ok(role)
    }

    fn roles(&self) -> Result<Vec<RoleDoc>> {
        self.resources
            .list_resources(ROLE_KIND)?
            .iter()
            .map(|(_, bytes)| decode(ROLE_KIND, bytes))
            .collect()
    }

    /// CreateRole.
    pub fn create_role(&self, new: NewRole) -> Result<RoleDoc> {
        check_name(&new.name, "roleName", 64)?;
        let path = new.path.unwrap_or_else(|| "/".into());
        check_path(&path, "path")?;
        check_policy_document(
            &new.assume_role_policy,
            "assumeRolePolicyDocument",
            MAX_TRUST_POLICY_CHARS,
            &format!("Cannot exceed quota for ACLSizePerRole: {MAX_TRUST_POLICY_CHARS}"),
        )?;
        if let Some(d) = &new.description {
            check_description(d)?;
        }
        let max_session_duration = new.max_session_duration.unwrap_or(3600);
        check_session_duration(max_session_duration)?;
        if let Some(b) = &new.permissions_boundary {
            check_arn(b, "permissionsBoundary")?;
        }
        check_tags(&new.tags)?;
        let _g = guard();
        if self
            .resources
            .get_resource(ROLE_KIND, &new.name.to_ascii_lowercase())?
            .is_some()
        {
            return Err(IamError::EntityAlreadyExists(format!(
                "Role with name {} already exists.",
                new.name
            )));
        }
        let role = RoleDoc {
            name: new.name,
            path,
            role_id: unique_id("AROA"),
            create_date: iso_now(),
            assume_role_policy: new.assume_role_policy,
            description: new.description,
            max_session_duration,
            permissions_boundary: new.permissions_boundary,
            tags: new.tags,
            inline_policies: BTreeMap::new(),
            attached_policies: Vec::new(),
        };
        self.save_role(&role)?;
        tracing::info!(role = %role.name, "created IAM role");
        Ok(role)
    }

    /// GetRole.
    pub fn get_role(&self, name: &str) -> Result<RoleDoc> {
        self.load_role(name)
    }

    /// ListRoles.
    pub fn list_roles(&self, path_prefix: Option<&str>, paging: &Paging) -> Result<Page<RoleDoc>> {
        if let Some(p) = path_prefix {
            check_path_prefix(p)?;
        }
        let prefix = path_prefix.unwrap_or("/");
        let roles = self
            .roles()?
            .into_iter()
            .filter(|r| r.path.starts_with(prefix))
            .collect();
        paginate(roles, |r| r.name.to_ascii_lowercase(), paging)
    }

    /// UpdateRole (and UpdateRoleDescription): what is given replaces what was.
    pub fn update_role(
        &self,
        name: &str,
        description: Option<String>,
        max_session_duration: Option<u32>,
    ) -> Result<RoleDoc> {
        if let Some(d) = &description {
            check_description(d)?;
        }
        if let Some(m) = max_session_duration {
            check_session_duration(m)?;
        }
        self.change_role(name, |role| {
            if description.is_some() {
                role.description = description;
            }
            if let Some(m) = max_session_duration {
                role.max_session_duration = m;
            }
            Ok(())
        })
    }

    /// UpdateAssumeRolePolicy.
    pub fn update_assume_role_policy(&self, name: &str, document: String) -> Result<()> {
        check_policy_document(
            &document,
            "policyDocument",
            MAX_TRUST_POLICY_CHARS,
            &format!("Cannot exceed quota for ACLSizePerRole: {MAX_TRUST_POLICY_CHARS}"),
        )?;
        self.change_role(name, |role| {
            role.assume_role_policy = document;
            Ok(())
        })
        .map(drop)
    }

    /// PutRolePermissionsBoundary / DeleteRolePermissionsBoundary (`None`).
    pub fn set_permissions_boundary(&self, name: &str, boundary: Option<String>) -> Result<()> {
        if let Some(b) = &boundary {
            check_arn(b, "permissionsBoundary")?;
        }
        self.change_role(name, |role| {
            role.permissions_boundary = boundary;
            Ok(())
        })
        .map(drop)
    }

    /// DeleteRole: refused while the role has inline or attached policies, as IAM does.
    pub fn delete_role(&self, name: &str) -> Result<()> {
        let _g = guard();
        let role = self.load_role(name)?;
        if !role.attached_policies.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must detach all policies first.".into(),
            ));
        }
        if !role.inline_policies.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must delete policies first.".into(),
            ));
        }
        self.resources
            .delete_resource(ROLE_KIND, &role.name.to_ascii_lowercase())?;
        tracing::info!(role = %role.name, "deleted IAM role");
        Ok(())
    }

    /// PutRolePolicy: adds or replaces an inline policy.
    pub fn put_role_policy(&self, role: &str, policy_name: &str, document: String) -> Result<()> {
        check_name(policy_name, "policyName", 128)?;
        check_policy_document(&document, "policyDocument", usize::MAX, "")?;
        self.change_role(role, |r| {
            let others: usize = r
                .inline_policies
                .iter()
                .filter(|(n, _)| n.as_str() != policy_name)
                .map(|(_, d)| significant_chars(d))
                .sum();
            if others + significant_chars(&document) > MAX_INLINE_ROLE_POLICY_CHARS {
                return Err(IamError::LimitExceeded(format!(
                    "Maximum policy size of {MAX_INLINE_ROLE_POLICY_CHARS} bytes exceeded for role {}",
                    r.name
                )));
            }
            r.inline_policies.insert(policy_name.to_owned(), document);
            Ok(())
        })
        .map(drop)
    }

    /// GetRolePolicy: the role's name as stored, and the document.
    pub fn get_role_policy(&self, role: &str, policy_name: &str) -> Result<(String, String)> {
        check_name(policy_name, "policyName", 128)?;
        let r = self.load_role(role)?;
        match r.inline_policies.get(policy_name) {
            Some(d) => Ok((r.name.clone(), d.clone())),
            None => Err(no_role_policy(policy_name)),
        }
    }

    /// ListRolePolicies.
    pub fn list_role_policies(&self, role: &str, paging: &Paging) -> Result<Page<String>> {
        let r = self.load_role(role)?;
        paginate(
            r.inline_policies.into_keys().collect(),
            Clone::clone,
            paging,
        )
    }

    /// DeleteRolePolicy.
    pub fn delete_role_policy(&self, role: &str, policy_name: &str) -> Result<()> {
        check_name(policy_name, "policyName", 128)?;
        self.change_role(role, |r| {
            r.inline_policies
                .remove(policy_name)
                .map(drop)
                .ok_or_else(|| no_role_policy(policy_name))
        })
        .map(drop)
    }

    /// Whether a managed policy ARN names something attachable: an AWS managed policy
    /// (whose catalog spillway does not keep, so any), or one of this account's.
    fn check_attachable(&self, arn: &str) -> Result<()> {
        check_arn(arn, "policyArn")?;
        let not_attachable =
            || IamError::NoSuchEntity(format!("Policy {arn} does not exist or is not attachable."));
        let (account, _, _) = parse_policy_arn(arn).ok_or_else(not_attachable)?;
        if account == "aws" {
            return Ok(());
        }
        match self.find_policy(arn) {
            Ok(_) => Ok(()),
            Err(IamError::NoSuchEntity(_)) => Err(not_attachable()),
            Err(e) => Err(e),
        }
    }

    /// AttachRolePolicy.
    pub fn attach_role_policy(&self, role: &str, arn: &str) -> Result<()> {
        self.check_attachable(arn)?;
        self.change_role(role, |r| {
            if r.attached_policies.iter().any(|a| a == arn) {
                return Ok(());
            }
            if r.attached_policies.len() >= MAX_ATTACHED_POLICIES {
                return Err(IamError::LimitExceeded(format!(
                    "Cannot exceed quota for PoliciesPerRole: {MAX_ATTACHED_POLICIES}"
                )));
            }
            r.attached_policies.push(arn.to_owned());
            Ok(())
        })
        .map(drop)
    }

    /// DetachRolePolicy.
    pub fn detach_role_policy(&self, role: &str, arn: &str) -> Result<()> {
        check_arn(arn, "policyArn")?;
        self.change_role(role, |r| {
            let before = r.attached_policies.len();
            r.attached_policies.retain(|a| a != arn);
            if r.attached_policies.len() == before {
                return Err(IamError::NoSuchEntity(format!(
                    "Policy {arn} was not found."
                )));
            }
            Ok(())
        })
        .map(drop)
    }

    /// ListAttachedRolePolicies: (name, ARN) pairs.
    pub fn list_attached_role_policies(
        &self,
        role: &str,
        path_prefix: Option<&str>,
        paging: &Paging,
    ) -> Result<Page<(String, String)>> {
        if let Some(p) = path_prefix {
            check_path_prefix(p)?;
        }
        let prefix = path_prefix.unwrap_or("/");
        let r = self.load_role(role)?;
        let mut attached: Vec<(String, String)> = r
            .attached_policies
            .iter()
            .filter_map(|arn| {
                let (_, path, name) = parse_policy_arn(arn)?;
                path.starts_with(prefix)
                    .then(|| (name.to_owned(), arn.clone()))
            })
            .collect();
        attached.sort_by(|a, b| a.1.cmp(&b.1));
        paginate(attached, |(_, arn)| arn.clone(), paging)
    }

    /// TagRole: adds tags, replacing values of keys already there.
    pub fn tag_role(&self, role: &str, tags: Vec<Tag>) -> Result<()> {
        check_tags(&tags)?;
        self.change_role(role, |r| {
            r.tags = merge_tags(&r.tags, tags)?;
            Ok(())
        })
        .map(drop)
    }

    /// UntagRole: removes the keys given (those not there are ignored).
    pub fn untag_role(&self, role: &str, keys: &[String]) -> Result<()> {
        check_tag_keys(keys)?;
        self.change_role(role, |r| {
            r.tags
                .retain(|t| !keys.iter().any(|k| k.eq_ignore_ascii_case(&t.key)));
            Ok(())
        })
        .map(drop)
    }

    /// ListRoleTags.
    pub fn list_role_tags(&self, role: &str, paging: &Paging) -> Result<Page<Tag>> {
        let r = self.load_role(role)?;
        let mut tags = r.tags;
        tags.sort_by(|a, b| a.key.cmp(&b.key));
        paginate(tags, |t| t.key.clone(), paging)
    }

    /// ListInstanceProfilesForRole: spillway keeps no instance profiles, so none, once
    /// the role is known.
    pub fn check_role_exists(&self, role: &str) -> Result<()> {
        self.load_role(role).map(drop)
    }

    // Managed policies.

    /// The policy an ARN names, when it is this account's.
    fn find_policy(&self, arn: &str) -> Result<PolicyDoc> {
        check_arn(arn, "policyArn")?;
        let missing =
            || IamError::NoSuchEntity(format!("Policy {arn} does not exist or is not attachable."));
        let (account, path, name) = parse_policy_arn(arn).ok_or_else(missing)?;
        if account != self.account_id || name.is_empty() || name.len() > 128 {
            return Err(missing());
        }
        let bytes = self
            .resources
            .get_resource(POLICY_KIND, &name.to_ascii_lowercase())?
            .ok_or_else(missing)?;
        let policy: PolicyDoc = decode(POLICY_KIND, &bytes)?;
        if policy.path != path || policy.name != name {
            return Err(missing());
        }
        Ok(policy)
    }

    fn save_policy(&self, policy: &PolicyDoc) -> Result<()> {
        self.resources.put_resource(
            POLICY_KIND,
            &policy.name.to_ascii_lowercase(),
            &json(policy)?,
        )?;
        Ok(())
    }

    /// How many roles have the policy attached.
    pub fn attachment_count(&self, arn: &str) -> Result<usize> {
        Ok(self
            .roles()?
            .iter()
            .filter(|r| r.attached_policies.iter().any(|a| a == arn))
            .count())
    }

    /// Names of the roles the policy is attached to.
    pub fn roles_with_policy(&self, arn: &str) -> Result<Vec<RoleDoc>> {
        self.find_policy(arn)?;
        Ok(self
            .roles()?
            .into_iter()
            .filter(|r| r.attached_policies.iter().any(|a| a == arn))
            .collect())
    }

    /// CreatePolicy.
    pub fn create_policy(&self, new: NewPolicy) -> Result<PolicyDoc> {
        check_name(&new.name, "policyName", 128)?;
        let path = new.path.unwrap_or_else(|| "/".into());
        check_path(&path, "path")?;
        check_managed_document(&new.document)?;
        if let Some(d) = &new.description {
            check_description(d)?;
        }
        check_tags(&new.tags)?;
        let _g = guard();
        if self
            .resources
            .get_resource(POLICY_KIND, &new.name.to_ascii_lowercase())?
            .is_some()
        {
            return Err(IamError::EntityAlreadyExists(format!(
                "A policy called {} already exists. Duplicate names are not allowed.",
                new.name
            )));
        }
        let now = iso_now();
        let policy = PolicyDoc {
            name: new.name,
            path,
            policy_id: unique_id("ANPA"),
            create_date: now.clone(),
            update_date: now.clone(),
            description: new.description,
            default_version: "v1".into(),
            versions: vec![PolicyVersionDoc {
                version_id: "v1".into(),
                document: new.document,
                create_date: now,
            }],
            next_version: 2,
            tags: new.tags,
        };
        self.save_policy(&policy)?;
        tracing::info!(policy = %policy.name, "created IAM policy");
        Ok(policy)
    }

    /// GetPolicy.
    pub fn get_policy(&self, arn: &str) -> Result<PolicyDoc> {
        self.find_policy(arn)
    }

    /// GetPolicyVersion.
    pub fn get_policy_version(
        &self,
        arn: &str,
        version_id: &str,
    ) -> Result<(PolicyVersionDoc, bool)> {
        check_version_id(version_id)?;
        let policy = self.find_policy(arn)?;
        let default = policy.default_version == version_id;
        policy
            .versions
            .into_iter()
            .find(|v| v.version_id == version_id)
            .map(|v| (v, default))
            .ok_or_else(|| no_version(arn, version_id))
    }

    /// ListPolicyVersions: newest first, each with whether it is the default.
    pub fn list_policy_versions(
        &self,
        arn: &str,
        paging: &Paging,
    ) -> Result<Page<(PolicyVersionDoc, bool)>> {
        let policy = self.find_policy(arn)?;
        let mut versions: Vec<(PolicyVersionDoc, bool)> = policy
            .versions
            .into_iter()
            .map(|v| {
                let d = v.version_id == policy.default_version;
                (v, d)
            })
            .collect();
        versions.sort_by_key(|(v, _)| std::cmp::Reverse(version_number(&v.version_id)));
        // Markers are version numbers, zero-padded so that they order as keys do
        // (descending, so from the largest possible down).
        paginate(
            versions,
            |(v, _)| format!("{:010}", u32::MAX - version_number(&v.version_id)),
            paging,
        )
    }

    /// CreatePolicyVersion.
    pub fn create_policy_version(
        &self,
        arn: &str,
        document: String,
        set_default: bool,
    ) -> Result<PolicyVersionDoc> {
        check_managed_document(&document)?;
        let _g = guard();
        let mut policy = self.find_policy(arn)?;
        if policy.versions.len() >= MAX_POLICY_VERSIONS {
            return Err(IamError::LimitExceeded(format!(
                "A managed policy can have up to {MAX_POLICY_VERSIONS} versions. Before you create a new version, you must delete an existing version."
            )));
        }
        let version = PolicyVersionDoc {
            version_id: format!("v{}", policy.next_version),
            document,
            create_date: iso_now(),
        };
        policy.next_version = policy.next_version.saturating_add(1);
        if set_default {
            policy.default_version = version.version_id.clone();
        }
        policy.update_date = version.create_date.clone();
        policy.versions.push(version.clone());
        self.save_policy(&policy)?;
        Ok(version)
    }

    /// SetDefaultPolicyVersion.
    pub fn set_default_policy_version(&self, arn: &str, version_id: &str) -> Result<()> {
        check_version_id(version_id)?;
        let _g = guard();
        let mut policy = self.find_policy(arn)?;
        if !policy.versions.iter().any(|v| v.version_id == version_id) {
            return Err(no_version(arn, version_id));
        }
        policy.default_version = version_id.to_owned();
        policy.update_date = iso_now();
        self.save_policy(&policy)
    }

    /// DeletePolicyVersion: never the default one.
    pub fn delete_policy_version(&self, arn: &str, version_id: &str) -> Result<()> {
        check_version_id(version_id)?;
        let _g = guard();
        let mut policy = self.find_policy(arn)?;
        if !policy.versions.iter().any(|v| v.version_id == version_id) {
            return Err(no_version(arn, version_id));
        }
        if policy.default_version == version_id {
            return Err(IamError::DeleteConflict(
                "Cannot delete the default version of a policy.".into(),
            ));
        }
        policy.versions.retain(|v| v.version_id != version_id);
        self.save_policy(&policy)
    }

    /// DeletePolicy: refused while attached or with versions besides the default.
    pub fn delete_policy(&self, arn: &str) -> Result<()> {
        let _g = guard();
        let policy = self.find_policy(arn)?;
        if self.attachment_count(arn)? > 0 {
            return Err(IamError::DeleteConflict(
                "Cannot delete a policy attached to entities.".into(),
            ));
        }
        if policy.versions.len() > 1 {
            return Err(IamError::DeleteConflict(
                "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.".into(),
            ));
        }
        self.resources
            .delete_resource(POLICY_KIND, &policy.name.to_ascii_lowercase())?;
        tracing::info!(policy = %policy.name, "deleted IAM policy");
        Ok(())
    }

    /// ListPolicies (this account's; `Scope=AWS` lists none, since spillway does not
    /// keep AWS's catalog), with their attachment counts.
    pub fn list_policies(
        &self,
        scope: Option<&str>,
        only_attached: bool,
        path_prefix: Option<&str>,
        paging: &Paging,
    ) -> Result<Page<(PolicyDoc, usize)>> {
        if let Some(p) = path_prefix {
            check_path_prefix(p)?;
        }
        let scope = scope.unwrap_or("All");
        if !matches!(scope, "All" | "AWS" | "Local") {
            return Err(constraint(
                scope,
                "scope",
                "must satisfy enum value set: [All, AWS, Local]",
            ));
        }
        let prefix = path_prefix.unwrap_or("/");
        let roles = self.roles()?;
        let mut out = Vec::new();
        if scope != "AWS" {
            for (_, bytes) in self.resources.list_resources(POLICY_KIND)? {
                let policy: PolicyDoc = decode(POLICY_KIND, &bytes)?;
                if !policy.path.starts_with(prefix) {
                    continue;
                }
                let arn = self.policy_arn(&policy);
                let count = roles
                    .iter()
                    .filter(|r| r.attached_policies.contains(&arn))
                    .count();
                if only_attached && count == 0 {
                    continue;
                }
                out.push((policy, count));
            }
        }
        paginate(out, |(p, _)| p.name.to_ascii_lowercase(), paging)
    }

    // STS.

    /// AssumeRole: a session for the role, remembered so that `GetCallerIdentity` signed
    /// with its key answers the assumed role. Roles of this account must exist; others
    /// (cross-account) are taken as given.
    pub fn assume_role(
        &self,
        role_arn: &str,
        session_name: &str,
        duration_seconds: Option<u32>,
    ) -> Result<Credentials> {
        check_length(role_arn, "roleArn", 20, 2048)?;
        check_length(session_name, "roleSessionName", 2, 64)?;
        let ok = session_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
        if !ok {
            return Err(constraint(
                session_name,
                "roleSessionName",
                "must satisfy regular expression pattern: [\\w+=,.@-]*",
            ));
        }
        let duration = duration_seconds.unwrap_or(3600);
        check_range(duration, "durationSeconds", 900, 43_200)?;
        let (account, role_path_name) = parse_role_arn(role_arn)
            .ok_or_else(|| IamError::Validation(format!("{} is invalid", shown(role_arn))))?;
        let role_name = role_path_name.rsplit('/').next().unwrap_or(role_path_name);
        let role_id = if account == self.account_id {
            let role = self.load_role(role_name).map_err(|e| match e {
                IamError::NoSuchEntity(_) | IamError::Validation(_) => IamError::AccessDenied(format!(
                    "User: arn:aws:iam::{}:root is not authorized to perform: sts:AssumeRole on resource: {}",
                    self.account_id,
                    shown(role_arn)
                )),
                e => e,
            })?;
            if duration > role.max_session_duration {
                return Err(IamError::Validation(
                    "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
                        .into(),
                ));
            }
            role.role_id
        } else {
            unique_id("AROA")
        };
        let now = crate::stream::now_ms();
        let expiration_ms = now + u64::from(duration) * 1000;
        let session = SessionDoc {
            access_key_id: unique_id("ASIA").chars().take(20).collect(),
            role_arn: role_arn.to_owned(),
            assumed_role_id: format!("{role_id}:{session_name}"),
            session_name: session_name.to_owned(),
            expiration_ms,
        };
        let _g = guard();
        self.forget_sessions(now)?;
        self.resources
            .put_resource(SESSION_KIND, &session.access_key_id, &json(&session)?)?;
        Ok(Credentials {
            assumed_role_arn: format!(
                "arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}"
            ),
            secret_access_key: format!("{}{}", random_chars(20), random_chars(20).to_lowercase()),
            session_token: format!("FQoGZXIvYXdzE{}", random_chars(300)),
            expiration: iso_seconds(expiration_ms),
            session,
        })
    }

    /// Removes expired sessions, and the oldest past [`MAX_SESSIONS`].
    fn forget_sessions(&self, now_ms: u64) -> Result<()> {
        let mut live = Vec::new();
        for (key, bytes) in self.resources.list_resources(SESSION_KIND)? {
            match decode::<SessionDoc>(SESSION_KIND, &bytes) {
                Ok(s) if s.expiration_ms > now_ms => live.push((s.expiration_ms, key)),
                _ => self.resources.delete_resource(SESSION_KIND, &key)?,
            }
        }
        if live.len() >= MAX_SESSIONS {
            live.sort();
            for (_, key) in &live[..=live.len() - MAX_SESSIONS] {
                self.resources.delete_resource(SESSION_KIND, key)?;
            }
        }
        Ok(())
    }

    /// GetCallerIdentity for a request signed with `access_key_id`: the assumed role of
    /// a live session spillway handed out, else the account's root.
    pub fn caller_identity(&self, access_key_id: Option<&str>) -> Result<Identity> {
        let session = match access_key_id {
            Some(k)
                if (16..=128).contains(&k.len())
                    && k.bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                self.resources.get_resource(SESSION_KIND, k)?
            }
            _ => None,
        };
        if let Some(bytes) = session {
            let s: SessionDoc = decode(SESSION_KIND, &bytes)?;
            if s.expiration_ms > crate::stream::now_ms()
                && let Some((account, path_name)) = parse_role_arn(&s.role_arn)
            {
                let name = path_name.rsplit('/').next().unwrap_or(path_name);
                return Ok(Identity {
                    arn: format!(
                        "arn:aws:sts::{account}:assumed-role/{name}/{}",
                        s.session_name
                    ),
                    user_id: s.assumed_role_id,
                    account: account.to_owned(),
                });
            }
        }
        Ok(Identity {
            arn: format!("arn:aws:iam::{}:root", self.account_id),
            user_id: self.account_id.clone(),
            account: self.account_id.clone(),
        })
    }
}

/// A role ARN's account and `path/name` (without the leading `role/`).
fn parse_role_arn(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.strip_prefix("arn:")?.splitn(5, ':');
    let _partition = parts.next()?;
    if parts.next()? != "iam" {
        return None;
    }
    let _region = parts.next()?;
    let account = parts.next()?;
    let name = parts.next()?.strip_prefix("role/")?;
    (!account.is_empty() && !name.is_empty() && !name.ends_with('/')).then_some((account, name))
}

fn check_session_duration(seconds: u32) -> Result<()> {
    check_range(seconds, "maxSessionDuration", 3600, 43_200)
}

fn check_managed_document(document: &str) -> Result<()> {
    check_policy_document(
        document,
        "policyDocument",
        MAX_MANAGED_POLICY_CHARS,
        &format!("Cannot exceed quota for PolicySize: {MAX_MANAGED_POLICY_CHARS}"),
    )
}

fn check_version_id(version_id: &str) -> Result<()> {
    let ok = version_id
        .strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.len() <= 9 && n.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        return Err(constraint(
            version_id,
            "versionId",
            "must satisfy regular expression pattern: v[1-9][0-9]*(\\.[A-Za-z0-9-]*)?",
        ));
    }
    Ok(())
}

fn version_number(version_id: &str) -> u32 {
    version_id
        .strip_prefix('v')
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn check_tag_keys(keys: &[String]) -> Result<()> {
    if keys.len() > MAX_TAGS {
        return Err(constraint(
            &format!("[{} keys]", keys.len()),
            "tagKeys",
            &format!("must have length less than or equal to {MAX_TAGS}"),
        ));
    }
    for k in keys {
        check_length(k, "tagKeys.member", 1, 128)?;
    }
    Ok(())
}

/// `new` over `old` (keys compared regardless of case), within [`MAX_TAGS`].
fn merge_tags(old: &[Tag], new: Vec<Tag>) -> Result<Vec<Tag>> {
    let mut tags = old.to_vec();
    for tag in new {
        match tags
            .iter_mut()
            .find(|t| t.key.eq_ignore_ascii_case(&tag.key))
        {
            Some(t) => t.value = tag.value,
            None => tags.push(tag),
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(IamError::LimitExceeded(format!(
            "Cannot exceed quota for TagsPerRole: {MAX_TAGS}."
        )));
    }
    Ok(tags)
}

fn no_role_policy(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The role policy with name {name} cannot be found."))
}

fn no_version(arn: &str, version_id: &str) -> IamError {
    IamError::NoSuchEntity(format!(
        "Policy {arn} version {version_id} does not exist or is not attachable."
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::Bytes;

    /// A resource store in memory, for tests.
    #[derive(Default)]
    pub(crate) struct MemoryStore(Mutex<BTreeMap<(String, String), Bytes>>);

    impl ResourceStore for MemoryStore {
        fn put_resource(
            &self,
            kind: &str,
            name: &str,
            document: &[u8],
        ) -> crate::storage::StoreResult<()> {
            self.0
                .lock()
                .unwrap()
                .insert((kind.into(), name.into()), Bytes::copy_from_slice(document));
            Ok(())
        }
        fn get_resource(
            &self,
            kind: &str,
            name: &str,
        ) -> crate::storage::StoreResult<Option<Bytes>> {
            Ok(self
                .0
                .lock()
                .unwrap()
                .get(&(kind.into(), name.into()))
                .cloned())
        }
        fn list_resources(&self, kind: &str) -> crate::storage::StoreResult<Vec<(String, Bytes)>> {
            Ok(self
                .0
                .lock()
                .unwrap()
                .iter()
                .filter(|((k, _), _)| k == kind)
                .map(|((_, n), v)| (n.clone(), v.clone()))
                .collect())
        }
        fn delete_resource(&self, kind: &str, name: &str) -> crate::storage::StoreResult<()> {
            self.0.lock().unwrap().remove(&(kind.into(), name.into()));
            Ok(())
        }
    }

    pub(crate) const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

    pub(crate) fn iam() -> Iam {
        Iam::new(Arc::new(MemoryStore::default()), "000000000000")
    }

    fn role(name: &str) -> NewRole {
        NewRole {
            name: name.into(),
            assume_role_policy: TRUST.into(),
            ..NewRole::default()
        }
    }

    #[test]
    fn a_role_has_iams_identity_shapes() {
        let iam = iam();
        let r = iam.create_role(role("lambda-exec")).unwrap();
        assert_eq!(r.path, "/");
        assert_eq!(r.max_session_duration, 3600);
        assert_eq!(r.role_id.len(), 21);
        assert!(r.role_id.starts_with("AROA"));
        assert!(
            r.role_id[4..]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        );
        assert_eq!(
            iam.role_arn(&r),
            "arn:aws:iam::000000000000:role/lambda-exec"
        );
        // `2026-12-01T09:00:00Z`
        assert_eq!(r.create_date.len(), 20);
        assert!(r.create_date.ends_with('Z') && r.create_date.as_bytes()[10] == b'T');
        let mut with_path = role("svc");
        with_path.path = Some("/team/app/".into());
        let r = iam.create_role(with_path).unwrap();
        assert_eq!(
            iam.role_arn(&r),
            "arn:aws:iam::000000000000:role/team/app/svc"
        );
    }

    #[test]
    fn iso_seconds_drops_milliseconds() {
        assert_eq!(iso_seconds(1_573_691_886_021), "2019-11-14T00:38:06Z");
    }

    #[test]
    fn names_are_unique_regardless_of_case_and_found_regardless_of_case() {
        let iam = iam();
        iam.create_role(role("Deployer")).unwrap();
        let e = iam.create_role(role("deployer")).unwrap_err();
        assert_eq!(e.code(), "EntityAlreadyExists");
        assert_eq!(e.status(), 409);
        assert_eq!(e.to_string(), "Role with name deployer already exists.");
        assert_eq!(iam.get_role("DEPLOYER").unwrap().name, "Deployer");
        let e = iam.get_role("nobody").unwrap_err();
        assert_eq!((e.code(), e.status()), ("NoSuchEntity", 404));
        assert_eq!(e.to_string(), "The role with name nobody cannot be found.");
    }

    #[test]
    fn inputs_are_bounded_as_iam_bounds_them() {
        let iam = iam();
        for bad in ["", "has space", "slash/no", "ünïcode", &"x".repeat(65)] {
            let e = iam.create_role(role(bad)).unwrap_err();
            assert_eq!(e.code(), "ValidationError", "{bad:?}");
            assert!(e.to_string().contains("'roleName'"), "{e}");
        }
        iam.create_role(role(&"x".repeat(64))).unwrap();
        iam.create_role(role("a_b+c=d,e.f@g-h")).unwrap();
        // A hostile name is not echoed whole.
        let e = iam.create_role(role(&"y".repeat(1_000_000))).unwrap_err();
        assert!(e.to_string().len() < 400);
        for path in ["no-slash", "/no-end", "/with space/", ""] {
            let mut r = role("p");
            r.path = Some(path.into());
            assert_eq!(
                iam.create_role(r).unwrap_err().code(),
                "ValidationError",
                "{path:?}"
            );
        }
        for (doc, code) in [
            ("not json", "MalformedPolicyDocument"),
            ("[1,2]", "MalformedPolicyDocument"),
            ("", "ValidationError"),
        ] {
            let mut r = role("d");
            r.assume_role_policy = doc.into();
            assert_eq!(iam.create_role(r).unwrap_err().code(), code, "{doc:?}");
        }
        let mut r = role("big-trust");
        r.assume_role_policy =
            format!(r#"{{"Version":"2012-10-17","Sid":"{}"}}"#, "a".repeat(5000));
        assert_eq!(iam.create_role(r).unwrap_err().code(), "LimitExceeded");
        let mut r = role("huge");
        r.assume_role_policy = format!("{{\"a\":\"{}\"}}", " ".repeat(MAX_DOCUMENT_CHARS));
        assert_eq!(iam.create_role(r).unwrap_err().code(), "ValidationError");
        for seconds in [0, 3599, 43_201] {
            let mut r = role("s");
            r.max_session_duration = Some(seconds);
            assert_eq!(iam.create_role(r).unwrap_err().code(), "ValidationError");
        }
        let mut r = role("t");
        r.tags = (0..=MAX_TAGS)
            .map(|i| Tag {
                key: format!("k{i}"),
                value: String::new(),
            })
            .collect();
        assert_eq!(iam.create_role(r).unwrap_err().code(), "LimitExceeded");
        let mut r = role("t");
        r.tags = vec![
            Tag {
                key: "Env".into(),
                value: "a".into(),
            },
            Tag {
                key: "env".into(),
                value: "b".into(),
            },
        ];
        assert_eq!(iam.create_role(r).unwrap_err().code(), "InvalidInput");
        let mut r = role("t");
        r.tags = vec![Tag {
            key: "bad<key>".into(),
            value: "v".into(),
        }];
        assert_eq!(iam.create_role(r).unwrap_err().code(), "ValidationError");
        assert!(
            iam.list_roles(
                None,
                &Paging {
                    marker: None,
                    max_items: Some(0)
                }
            )
            .is_err()
        );
        assert!(
            iam.list_roles(
                None,
                &Paging {
                    marker: None,
                    max_items: Some(1001)
                }
            )
            .is_err()
        );
        assert!(iam.list_roles(Some("nope"), &Paging::default()).is_err());
    }

    #[test]
    fn inline_policies_count_against_the_roles_quota_without_white_space() {
        let iam = iam();
        iam.create_role(role("r")).unwrap();
        let half = format!("{{\"Sid\":\"{}\"}}", "a".repeat(6000));
        iam.put_role_policy("r", "one", half.clone()).unwrap();
        // Replacing a policy counts only the new text.
        iam.put_role_policy("r", "one", half.clone()).unwrap();
        let e = iam.put_role_policy("r", "two", half.clone()).unwrap_err();
        assert_eq!(e.code(), "LimitExceeded");
        let spaced = format!("{{ \"a\" : {} }}", " ".repeat(20_000));
        assert!(
            iam.put_role_policy("r", "two", spaced.replace(" : ", ": 1"))
                .is_ok()
        );
        let e = iam
            .put_role_policy("r", "bad name", "{}".into())
            .unwrap_err();
        assert!(e.to_string().contains("'policyName'"));
        let e = iam.put_role_policy("r", "x", "{".into()).unwrap_err();
        assert_eq!(e.code(), "MalformedPolicyDocument");
    }

    #[test]
    fn deleting_a_role_with_policies_is_a_conflict() {
        let iam = iam();
        iam.create_role(role("r")).unwrap();
        iam.put_role_policy("r", "inline", "{}".into()).unwrap();
        let e = iam.delete_role("r").unwrap_err();
        assert_eq!((e.code(), e.status()), ("DeleteConflict", 409));
        iam.delete_role_policy("r", "inline").unwrap();
        assert_eq!(
            iam.delete_role_policy("r", "inline").unwrap_err().code(),
            "NoSuchEntity"
        );
        iam.attach_role_policy("r", "arn:aws:iam::aws:policy/ReadOnlyAccess")
            .unwrap();
        assert_eq!(iam.delete_role("r").unwrap_err().code(), "DeleteConflict");
        iam.detach_role_policy("r", "arn:aws:iam::aws:policy/ReadOnlyAccess")
            .unwrap();
        iam.delete_role("r").unwrap();
        assert_eq!(iam.get_role("r").unwrap_err().code(), "NoSuchEntity");
    }

    #[test]
    fn listings_page_by_marker() {
        let iam = iam();
        for i in 0..5 {
            iam.create_role(role(&format!("role-{i}"))).unwrap();
        }
        let mut seen = Vec::new();
        let mut marker = None;
        loop {
            let page = iam
                .list_roles(
                    Some("/"),
                    &Paging {
                        marker,
                        max_items: Some(2),
                    },
                )
                .unwrap();
            assert!(page.items.len() <= 2);
            seen.extend(page.items.into_iter().map(|r| r.name));
            match page.marker {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        assert_eq!(seen, ["role-0", "role-1", "role-2", "role-3", "role-4"]);
        assert!(
            iam.list_roles(Some("/other/"), &Paging::default())
                .unwrap()
                .items
                .is_empty()
        );
    }

    #[test]
    fn managed_policies_version_attach_and_delete_as_iam_does() {
        let iam = iam();
        iam.create_role(role("r")).unwrap();
        let p = iam
            .create_policy(NewPolicy {
                name: "writer".into(),
                path: Some("/app/".into()),
                document: "{\"Version\":\"2012-10-17\"}".into(),
                ..NewPolicy::default()
            })
            .unwrap();
        let arn = iam.policy_arn(&p);
        assert_eq!(arn, "arn:aws:iam::000000000000:policy/app/writer");
        assert!(p.policy_id.starts_with("ANPA"));
        let missing = "arn:aws:iam::000000000000:policy/app/nope";
        assert_eq!(
            iam.attach_role_policy("r", missing).unwrap_err().code(),
            "NoSuchEntity"
        );
        iam.attach_role_policy("r", &arn).unwrap();
        assert_eq!(iam.attachment_count(&arn).unwrap(), 1);
        assert_eq!(
            iam.delete_policy(&arn).unwrap_err().code(),
            "DeleteConflict"
        );
        iam.detach_role_policy("r", &arn).unwrap();
        let v2 = iam.create_policy_version(&arn, "{}".into(), true).unwrap();
        assert_eq!(v2.version_id, "v2");
        let (v, default) = iam.get_policy_version(&arn, "v2").unwrap();
        assert!(default);
        assert_eq!(v.document, "{}");
        let versions = iam.list_policy_versions(&arn, &Paging::default()).unwrap();
        let ids: Vec<_> = versions
            .items
            .iter()
            .map(|(v, _)| v.version_id.as_str())
            .collect();
        assert_eq!(ids, ["v2", "v1"]);
        assert_eq!(
            iam.delete_policy_version(&arn, "v2").unwrap_err().code(),
            "DeleteConflict"
        );
        assert_eq!(
            iam.delete_policy(&arn).unwrap_err().code(),
            "DeleteConflict"
        );
        iam.delete_policy_version(&arn, "v1").unwrap();
        iam.delete_policy(&arn).unwrap();
        assert_eq!(iam.get_policy(&arn).unwrap_err().code(), "NoSuchEntity");
        assert!(iam.get_policy_version(&arn, "1").is_err());
    }

    #[test]
    fn assumed_roles_are_who_their_keys_say() {
        let iam = iam();
        let r = iam.create_role(role("runner")).unwrap();
        let arn = iam.role_arn(&r);
        let c = iam.assume_role(&arn, "ci-job", None).unwrap();
        assert_eq!(c.session.access_key_id.len(), 20);
        assert!(c.session.access_key_id.starts_with("ASIA"));
        assert_eq!(
            c.assumed_role_arn,
            "arn:aws:sts::000000000000:assumed-role/runner/ci-job"
        );
        let id = iam.caller_identity(Some(&c.session.access_key_id)).unwrap();
        assert_eq!(id.arn, c.assumed_role_arn);
        assert_eq!(id.user_id, format!("{}:ci-job", r.role_id));
        let root = iam.caller_identity(Some("test")).unwrap();
        assert_eq!(root.arn, "arn:aws:iam::000000000000:root");
        assert_eq!(root.account, "000000000000");
        let e = iam
            .assume_role("arn:aws:iam::000000000000:role/absent", "s1", None)
            .unwrap_err();
        assert_eq!((e.code(), e.status()), ("AccessDenied", 403));
        assert!(iam.assume_role(&arn, "x", None).is_err());
        assert!(iam.assume_role(&arn, "ok", Some(100_000)).is_err());
        assert!(
            iam.assume_role("not-an-arn-at-all-really", "ok", None)
                .is_err()
        );
    }
}
