//! STS and IAM on the shared endpoint (awsQuery: a form-encoded `Action` in, XML out).
//! Parameters are read here, `iam::Iam` does the work (over the resource store, on a
//! blocking thread since each write is synced), and the answer is rendered in AWS's XML
//! shapes: policy documents percent-encoded as IAM returns them, dates to the second,
//! errors in awsQuery's `ErrorResponse` (through [`front::error`]). An action not
//! listed here is answered by [`front::unimplemented`].

use std::collections::{BTreeMap, HashMap};

use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::front::{self, ControlPlane, ControlRequest, ControlService, xml_escape};
use crate::iam::{
    Iam, IamError, NewPolicy, NewRole, Page, Paging, PolicyDoc, PolicyVersionDoc, RoleDoc, Tag,
};

/// The STS actions spillway answers.
const STS_ACTIONS: &[&str] = &["GetCallerIdentity", "AssumeRole"];

/// The IAM actions spillway answers.
const IAM_ACTIONS: &[&str] = &[
    "CreateRole",
    "GetRole",
    "ListRoles",
    "UpdateRole",
    "UpdateRoleDescription",
    "UpdateAssumeRolePolicy",
    "PutRolePermissionsBoundary",
    "DeleteRolePermissionsBoundary",
    "DeleteRole",
    "PutRolePolicy",
    "GetRolePolicy",
    "ListRolePolicies",
    "DeleteRolePolicy",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "ListAttachedRolePolicies",
    "ListInstanceProfilesForRole",
    "TagRole",
    "UntagRole",
    "ListRoleTags",
    "CreatePolicy",
    "GetPolicy",
    "DeletePolicy",
    "ListPolicies",
    "GetPolicyVersion",
    "ListPolicyVersions",
    "CreatePolicyVersion",
    "DeletePolicyVersion",
    "SetDefaultPolicyVersion",
    "ListEntitiesForPolicy",
];

/// Answers one STS or IAM request.
pub async fn handle(
    cp: &ControlPlane,
    service: ControlService,
    request: ControlRequest,
) -> Response {
    let actions = match service {
        ControlService::Sts => STS_ACTIONS,
        _ => IAM_ACTIONS,
    };
    let Some(action) = request
        .query_action()
        .filter(|a| actions.contains(&a.as_str()))
    else {
        return front::unimplemented(service, &request);
    };
    let params = Params::from_request(&request.uri, &request.body);
    let access_key = access_key_id(&request.headers, &request.uri);
    let iam = Iam::new(cp.resources.clone(), cp.account_id.clone());
    let name = action.clone();
    let outcome =
        tokio::task::spawn_blocking(move || run(&iam, &name, &params, access_key.as_deref())).await;
    match outcome {
        Ok(Ok(result)) => respond(service, &action, result.as_deref()),
        Ok(Err(e)) => {
            if let IamError::Storage(s) = &e {
                tracing::error!(error = %s, %action, "IAM storage failure");
            }
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            front::error(service, &request.headers, status, e.code(), &e.to_string())
        }
        Err(join) => {
            tracing::error!(error = %join, %action, "IAM handler failed");
            front::error(
                service,
                &request.headers,
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceFailure",
                "The request processing has failed because of an unknown error.",
            )
        }
    }
}

/// The access key a request is signed with, from `Authorization` or a presigned query.
fn access_key_id(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let credential = match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(auth) => {
            let at = auth.find("Credential=")?;
            auth[at + "Credential=".len()..].to_owned()
        }
        None => front::form_value(uri.query()?.as_bytes(), "X-Amz-Credential")?,
    };
    credential
        .split('/')
        .next()
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
}

/// The 200 answer: `<{Action}Response>` with its `<{Action}Result>` (when the action
/// has one) and the request id.
fn respond(service: ControlService, action: &str, result: Option<&str>) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let body = envelope(service, action, result, &request_id);
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        r.headers_mut().insert(super::names::X_AMZN_REQUEST_ID, v);
    }
    r
}

/// The response document of an awsQuery action.
pub fn envelope(
    service: ControlService,
    action: &str,
    result: Option<&str>,
    request_id: &str,
) -> String {
    let mut out = format!(
        "<{action}Response xmlns=\"{}\">\n",
        front::query_namespace(service)
    );
    if let Some(result) = result {
        out.push_str(&format!(
            "  <{action}Result>\n{result}  </{action}Result>\n"
        ));
    }
    out.push_str(&format!(
        "  <ResponseMetadata>\n    <RequestId>{request_id}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n"
    ));
    out
}

/// A policy document as IAM returns it: percent-encoded (every byte but RFC 3986's
/// unreserved characters), so that clients URL-decode it back to the text given.
pub fn encode_document(document: &str) -> String {
    let mut out = String::with_capacity(document.len() * 2);
    for b in document.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The request's parameters: the query string's, then the form body's over them.
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn from_request(uri: &Uri, body: &[u8]) -> Self {
        let mut map = HashMap::new();
        for (k, v) in front::form_pairs(uri.query().unwrap_or_default().as_bytes())
            .into_iter()
            .chain(front::form_pairs(body))
        {
            map.insert(k, v);
        }
        Self(map)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn owned(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }

    /// A required parameter; AWS's "must not be null" when absent (`member` is its
    /// name in the model, lower camel case).
    fn required(&self, name: &str) -> Result<&str, IamError> {
        self.get(name).ok_or_else(|| {
            IamError::Validation(format!(
                "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                lower_camel(name)
            ))
        })
    }

    fn number(&self, name: &str) -> Result<Option<u32>, IamError> {
        self.get(name)
            .map(|v| {
                v.trim().parse::<u32>().map_err(|_| {
                    IamError::Validation(format!(
                        "1 validation error detected: Value '{}' at '{}' failed to satisfy constraint: Member must be a number",
                        v.chars().take(64).collect::<String>(),
                        lower_camel(name)
                    ))
                })
            })
            .transpose()
    }

    fn flag(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    fn paging(&self) -> Result<Paging, IamError> {
        Ok(Paging {
            marker: self.owned("Marker"),
            max_items: self.number("MaxItems")?,
        })
    }

    /// `Prefix.member.N` values, in N order.
    fn list(&self, prefix: &str) -> Vec<String> {
        let head = format!("{prefix}.member.");
        let mut items: BTreeMap<u32, String> = BTreeMap::new();
        for (k, v) in &self.0 {
            if let Some(n) = k.strip_prefix(&head).and_then(|n| n.parse().ok()) {
                items.insert(n, v.clone());
            }
        }
        items.into_values().collect()
    }

    /// `Tags.member.N.Key` / `.Value` pairs, in N order.
    fn tags(&self) -> Result<Vec<Tag>, IamError> {
        let mut items: BTreeMap<u32, (Option<String>, Option<String>)> = BTreeMap::new();
        for (k, v) in &self.0 {
            let Some(rest) = k.strip_prefix("Tags.member.") else {
                continue;
            };
            let Some((n, field)) = rest.split_once('.') else {
                continue;
            };
            let Ok(n) = n.parse::<u32>() else {
                continue;
            };
            let entry = items.entry(n).or_default();
            match field {
                "Key" => entry.0 = Some(v.clone()),
                "Value" => entry.1 = Some(v.clone()),
                _ => {}
            }
        }
        items
            .into_iter()
            .map(|(n, (key, value))| match (key, value) {
                (Some(key), Some(value)) => Ok(Tag { key, value }),
                (None, _) => Err(null_member(&format!("tags.{n}.member.key"))),
                (_, None) => Err(null_member(&format!("tags.{n}.member.value"))),
            })
            .collect()
    }
}

fn null_member(member: &str) -> IamError {
    IamError::Validation(format!(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
    ))
}

/// `RoleName` as the model's member names it: `roleName`.
fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) => c.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// Does one action; its `Result` element's content, or `None` for actions without one.
fn run(
    iam: &Iam,
    action: &str,
    p: &Params,
    access_key: Option<&str>,
) -> Result<Option<String>, IamError> {
    let mut x = Xml::default();
    match action {
        "GetCallerIdentity" => {
            let id = iam.caller_identity(access_key)?;
            x.el("Arn", &id.arn);
            x.el("UserId", &id.user_id);
            x.el("Account", &id.account);
        }
        "AssumeRole" => {
            let c = iam.assume_role(
                p.required("RoleArn")?,
                p.required("RoleSessionName")?,
                p.number("DurationSeconds")?,
            )?;
            x.open("AssumedRoleUser");
            x.el("Arn", &c.assumed_role_arn);
            x.el("AssumedRoleId", &c.session.assumed_role_id);
            x.close("AssumedRoleUser");
            x.open("Credentials");
            x.el("AccessKeyId", &c.session.access_key_id);
            x.el("SecretAccessKey", &c.secret_access_key);
            x.el("SessionToken", &c.session_token);
            x.el("Expiration", &c.expiration);
            x.close("Credentials");
            x.el("PackedPolicySize", "0");
        }
        "CreateRole" => {
            let role = iam.create_role(NewRole {
                name: p.required("RoleName")?.to_owned(),
                path: p.owned("Path"),
                assume_role_policy: p.required("AssumeRolePolicyDocument")?.to_owned(),
                description: p.owned("Description"),
                max_session_duration: p.number("MaxSessionDuration")?,
                permissions_boundary: p.owned("PermissionsBoundary"),
                tags: p.tags()?,
            })?;
            role_xml(&mut x, iam, &role, RoleView::Created);
        }
        "GetRole" => {
            let role = iam.get_role(p.required("RoleName")?)?;
            role_xml(&mut x, iam, &role, RoleView::Full);
        }
        "ListRoles" => {
            let page = iam.list_roles(p.get("PathPrefix"), &p.paging()?)?;
            page_xml(&mut x, "Roles", page, |x, role| {
                role_xml(x, iam, &role, RoleView::Listed);
            });
        }
        "UpdateRole" => {
            iam.update_role(
                p.required("RoleName")?,
                p.owned("Description"),
                p.number("MaxSessionDuration")?,
            )?;
        }
        "UpdateRoleDescription" => {
            let role = iam.update_role(
                p.required("RoleName")?,
                Some(p.required("Description")?.to_owned()),
                None,
            )?;
            role_xml(&mut x, iam, &role, RoleView::Full);
        }
        "UpdateAssumeRolePolicy" => {
            iam.update_assume_role_policy(
                p.required("RoleName")?,
                p.required("PolicyDocument")?.to_owned(),
            )?;
            return Ok(None);
        }
        "PutRolePermissionsBoundary" => {
            iam.set_permissions_boundary(
                p.required("RoleName")?,
                Some(p.required("PermissionsBoundary")?.to_owned()),
            )?;
            return Ok(None);
        }
        "DeleteRolePermissionsBoundary" => {
            iam.set_permissions_boundary(p.required("RoleName")?, None)?;
            return Ok(None);
        }
        "DeleteRole" => {
            iam.delete_role(p.required("RoleName")?)?;
            return Ok(None);
        }
        "PutRolePolicy" => {
            iam.put_role_policy(
                p.required("RoleName")?,
                p.required("PolicyName")?,
                p.required("PolicyDocument")?.to_owned(),
            )?;
            return Ok(None);
        }
        "GetRolePolicy" => {
            let policy_name = p.required("PolicyName")?;
            let (role, document) = iam.get_role_policy(p.required("RoleName")?, policy_name)?;
            x.el("RoleName", &role);
            x.el("PolicyName", policy_name);
            x.el("PolicyDocument", &encode_document(&document));
        }
        "ListRolePolicies" => {
            let page = iam.list_role_policies(p.required("RoleName")?, &p.paging()?)?;
            page_xml(&mut x, "PolicyNames", page, |x, name| {
                x.el("member", &name);
            });
        }
        "DeleteRolePolicy" => {
            iam.delete_role_policy(p.required("RoleName")?, p.required("PolicyName")?)?;
            return Ok(None);
        }
        "AttachRolePolicy" => {
            iam.attach_role_policy(p.required("RoleName")?, p.required("PolicyArn")?)?;
            return Ok(None);
        }
        "DetachRolePolicy" => {
            iam.detach_role_policy(p.required("RoleName")?, p.required("PolicyArn")?)?;
            return Ok(None);
        }
        "ListAttachedRolePolicies" => {
            let page = iam.list_attached_role_policies(
                p.required("RoleName")?,
                p.get("PathPrefix"),
                &p.paging()?,
            )?;
            page_xml(&mut x, "AttachedPolicies", page, |x, (name, arn)| {
                x.open("member");
                x.el("PolicyName", &name);
                x.el("PolicyArn", &arn);
                x.close("member");
            });
        }
        "ListInstanceProfilesForRole" => {
            iam.check_role_exists(p.required("RoleName")?)?;
            let page: Page<String> = crate::iam::paginate(Vec::new(), Clone::clone, &p.paging()?)?;
            page_xml(&mut x, "InstanceProfiles", page, |_, _| {});
        }
        "TagRole" => {
            iam.tag_role(p.required("RoleName")?, p.tags()?)?;
            return Ok(None);
        }
        "UntagRole" => {
            iam.untag_role(p.required("RoleName")?, &p.list("TagKeys"))?;
            return Ok(None);
        }
        "ListRoleTags" => {
            let page = iam.list_role_tags(p.required("RoleName")?, &p.paging()?)?;
            page_xml(&mut x, "Tags", page, |x, tag| tag_xml(x, &tag));
        }
        "CreatePolicy" => {
            let policy = iam.create_policy(NewPolicy {
                name: p.required("PolicyName")?.to_owned(),
                path: p.owned("Path"),
                document: p.required("PolicyDocument")?.to_owned(),
                description: p.owned("Description"),
                tags: p.tags()?,
            })?;
            policy_xml(&mut x, iam, &policy, 0, true);
        }
        "GetPolicy" => {
            let arn = p.required("PolicyArn")?;
            let policy = iam.get_policy(arn)?;
            let count = iam.attachment_count(arn)?;
            policy_xml(&mut x, iam, &policy, count, true);
        }
        "DeletePolicy" => {
            iam.delete_policy(p.required("PolicyArn")?)?;
            return Ok(None);
        }
        "ListPolicies" => {
            let page = iam.list_policies(
                p.get("Scope"),
                p.flag("OnlyAttached"),
                p.get("PathPrefix"),
                &p.paging()?,
            )?;
            page_xml(&mut x, "Policies", page, |x, (policy, count)| {
                policy_xml(x, iam, &policy, count, false);
            });
        }
        "GetPolicyVersion" => {
            let (version, default) =
                iam.get_policy_version(p.required("PolicyArn")?, p.required("VersionId")?)?;
            version_xml(&mut x, "PolicyVersion", &version, default, true);
        }
        "ListPolicyVersions" => {
            let page = iam.list_policy_versions(p.required("PolicyArn")?, &p.paging()?)?;
            page_xml(&mut x, "Versions", page, |x, (version, default)| {
                version_xml(x, "member", &version, default, false);
            });
        }
        "CreatePolicyVersion" => {
            let version = iam.create_policy_version(
                p.required("PolicyArn")?,
                p.required("PolicyDocument")?.to_owned(),
                p.flag("SetAsDefault"),
            )?;
            let default = p.flag("SetAsDefault");
            version_xml(&mut x, "PolicyVersion", &version, default, false);
        }
        "DeletePolicyVersion" => {
            iam.delete_policy_version(p.required("PolicyArn")?, p.required("VersionId")?)?;
            return Ok(None);
        }
        "SetDefaultPolicyVersion" => {
            iam.set_default_policy_version(p.required("PolicyArn")?, p.required("VersionId")?)?;
            return Ok(None);
        }
        "ListEntitiesForPolicy" => {
            let roles = iam.roles_with_policy(p.required("PolicyArn")?)?;
            let page = crate::iam::paginate(roles, |r| r.name.to_ascii_lowercase(), &p.paging()?)?;
            x.open("PolicyGroups");
            x.close("PolicyGroups");
            x.open("PolicyUsers");
            x.close("PolicyUsers");
            page_xml(&mut x, "PolicyRoles", page, |x, role| {
                x.open("member");
                x.el("RoleName", &role.name);
                x.el("RoleId", &role.role_id);
                x.close("member");
            });
        }
        _ => {
            // Only actions of STS_ACTIONS and IAM_ACTIONS get here.
            return Err(IamError::InvalidInput(format!(
                "Could not find operation {action}"
            )));
        }
    }
    Ok(Some(x.0))
}

/// XML written element by element, indented under the `Result` element.
#[derive(Debug, Default)]
struct Xml(String);

impl Xml {
    fn el(&mut self, name: &str, text: &str) {
        self.0
            .push_str(&format!("    <{name}>{}</{name}>\n", xml_escape(text)));
    }

    fn open(&mut self, name: &str) {
        self.0.push_str(&format!("    <{name}>\n"));
    }

    fn close(&mut self, name: &str) {
        self.0.push_str(&format!("    </{name}>\n"));
    }
}

/// Which of a role's members an action returns: ListRoles leaves out tags, the
/// permissions boundary and `RoleLastUsed`; CreateRole leaves out `RoleLastUsed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoleView {
    Listed,
    Created,
    Full,
}

fn role_xml(x: &mut Xml, iam: &Iam, role: &RoleDoc, view: RoleView) {
    let element = if view == RoleView::Listed {
        "member"
    } else {
        "Role"
    };
    x.open(element);
    x.el("Path", &role.path);
    x.el("RoleName", &role.name);
    x.el("RoleId", &role.role_id);
    x.el("Arn", &iam.role_arn(role));
    x.el("CreateDate", &role.create_date);
    x.el(
        "AssumeRolePolicyDocument",
        &encode_document(&role.assume_role_policy),
    );
    if let Some(d) = &role.description {
        x.el("Description", d);
    }
    x.el("MaxSessionDuration", &role.max_session_duration.to_string());
    if view != RoleView::Listed {
        if let Some(b) = &role.permissions_boundary {
            x.open("PermissionsBoundary");
            x.el("PermissionsBoundaryType", "PermissionsBoundaryPolicy");
            x.el("PermissionsBoundaryArn", b);
            x.close("PermissionsBoundary");
        }
        tags_xml(x, &role.tags);
    }
    if view == RoleView::Full {
        x.0.push_str("    <RoleLastUsed/>\n");
    }
    x.close(element);
}

fn policy_xml(x: &mut Xml, iam: &Iam, policy: &PolicyDoc, attachments: usize, single: bool) {
    let element = if single { "Policy" } else { "member" };
    x.open(element);
    x.el("PolicyName", &policy.name);
    x.el("PolicyId", &policy.policy_id);
    x.el("Arn", &iam.policy_arn(policy));
    x.el("Path", &policy.path);
    x.el("DefaultVersionId", &policy.default_version);
    x.el("AttachmentCount", &attachments.to_string());
    x.el("PermissionsBoundaryUsageCount", "0");
    x.el("IsAttachable", "true");
    if let Some(d) = policy.description.as_ref().filter(|_| single) {
        x.el("Description", d);
    }
    x.el("CreateDate", &policy.create_date);
    x.el("UpdateDate", &policy.update_date);
    if single {
        tags_xml(x, &policy.tags);
    }
    x.close(element);
}

fn version_xml(x: &mut Xml, element: &str, v: &PolicyVersionDoc, default: bool, document: bool) {
    x.open(element);
    if document {
        x.el("Document", &encode_document(&v.document));
    }
    x.el("VersionId", &v.version_id);
    x.el("IsDefaultVersion", if default { "true" } else { "false" });
    x.el("CreateDate", &v.create_date);
    x.close(element);
}

fn tag_xml(x: &mut Xml, tag: &Tag) {
    x.open("member");
    x.el("Key", &tag.key);
    x.el("Value", &tag.value);
    x.close("member");
}

fn tags_xml(x: &mut Xml, tags: &[Tag]) {
    if tags.is_empty() {
        return;
    }
    x.open("Tags");
    for tag in tags {
        tag_xml(x, tag);
    }
    x.close("Tags");
}

/// A listing: the list element with one entry per item, `IsTruncated`, and the
/// `Marker` of the next page when there is one.
fn page_xml<T>(x: &mut Xml, list: &str, page: Page<T>, mut item: impl FnMut(&mut Xml, T)) {
    x.open(list);
    for t in page.items {
        item(x, t);
    }
    x.close(list);
    x.el(
        "IsTruncated",
        if page.marker.is_some() {
            "true"
        } else {
            "false"
        },
    );
    if let Some(m) = &page.marker {
        x.el("Marker", m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::tests::{TRUST, iam};

    fn params(form: &str) -> Params {
        Params::from_request(&Uri::from_static("/"), form.as_bytes())
    }

    fn form(pairs: &[(&str, &str)]) -> String {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_document(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    #[test]
    fn the_envelope_is_awsquerys() {
        let body = envelope(
            ControlService::Sts,
            "GetCallerIdentity",
            Some("    <Account>1</Account>\n"),
            "rid",
        );
        assert_eq!(
            body,
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <GetCallerIdentityResult>\n    <Account>1</Account>\n  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>rid</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n"
        );
        let body = envelope(ControlService::Iam, "DeleteRole", None, "rid");
        assert!(body.starts_with("<DeleteRoleResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\n  <ResponseMetadata>"));
        assert!(!body.contains("DeleteRoleResult"));
    }

    #[test]
    fn documents_are_percent_encoded_and_decode_back() {
        let doc = r#"{"a": "b+c/d & é"}"#;
        let encoded = encode_document(doc);
        assert_eq!(encoded, "%7B%22a%22%3A%20%22b%2Bc%2Fd%20%26%20%C3%A9%22%7D");
        assert_eq!(front::percent_decode(encoded.as_bytes()), doc);
    }

    #[test]
    fn caller_identity_is_the_accounts_root() {
        let iam = iam();
        let xml = run(&iam, "GetCallerIdentity", &params(""), Some("test"))
            .unwrap()
            .unwrap();
        assert_eq!(
            xml,
            "    <Arn>arn:aws:iam::000000000000:root</Arn>\n    <UserId>000000000000</UserId>\n    <Account>000000000000</Account>\n"
        );
    }

    #[test]
    fn a_role_renders_in_iams_shape() {
        let iam = iam();
        let create = form(&[
            ("RoleName", "exec"),
            ("AssumeRolePolicyDocument", TRUST),
            ("Description", "a <role> & more"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "data"),
        ]);
        let created = run(&iam, "CreateRole", &params(&create), None)
            .unwrap()
            .unwrap();
        assert!(created.starts_with(
            "    <Role>\n    <Path>/</Path>\n    <RoleName>exec</RoleName>\n    <RoleId>AROA"
        ));
        assert!(created.contains("<Arn>arn:aws:iam::000000000000:role/exec</Arn>"));
        assert!(created.contains(&format!(
            "<AssumeRolePolicyDocument>{}</AssumeRolePolicyDocument>",
            encode_document(TRUST)
        )));
        assert!(created.contains("<Description>a &lt;role&gt; &amp; more</Description>"));
        assert!(created.contains("<MaxSessionDuration>3600</MaxSessionDuration>"));
        assert!(
            created.contains("<Tags>\n    <member>\n    <Key>team</Key>\n    <Value>data</Value>")
        );
        assert!(!created.contains("RoleLastUsed"));
        let got = run(&iam, "GetRole", &params("RoleName=exec"), None)
            .unwrap()
            .unwrap();
        assert!(got.contains("<RoleLastUsed/>"));
        let listed = run(&iam, "ListRoles", &params("MaxItems=1"), None)
            .unwrap()
            .unwrap();
        assert!(listed.starts_with("    <Roles>\n    <member>\n"));
        assert!(!listed.contains("<Tags>"));
        assert!(listed.ends_with("    </Roles>\n    <IsTruncated>false</IsTruncated>\n"));
    }

    #[test]
    fn inline_policies_render_encoded_and_list_by_name() {
        let iam = iam();
        let create = form(&[("RoleName", "r"), ("AssumeRolePolicyDocument", TRUST)]);
        run(&iam, "CreateRole", &params(&create), None).unwrap();
        for name in ["b", "a"] {
            let put = form(&[
                ("RoleName", "r"),
                ("PolicyName", name),
                ("PolicyDocument", "{\"Version\": \"2012-10-17\"}"),
            ]);
            assert_eq!(
                run(&iam, "PutRolePolicy", &params(&put), None).unwrap(),
                None
            );
        }
        let got = run(
            &iam,
            "GetRolePolicy",
            &params("RoleName=r&PolicyName=a"),
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            got,
            "    <RoleName>r</RoleName>\n    <PolicyName>a</PolicyName>\n    <PolicyDocument>%7B%22Version%22%3A%20%222012-10-17%22%7D</PolicyDocument>\n"
        );
        let listed = run(
            &iam,
            "ListRolePolicies",
            &params("RoleName=r&MaxItems=1"),
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            listed,
            "    <PolicyNames>\n    <member>a</member>\n    </PolicyNames>\n    <IsTruncated>true</IsTruncated>\n    <Marker>b</Marker>\n"
        );
        let rest = run(
            &iam,
            "ListRolePolicies",
            &params("RoleName=r&Marker=b"),
            None,
        )
        .unwrap()
        .unwrap();
        assert!(rest.contains("<member>b</member>") && !rest.contains("<member>a</member>"));
    }

    #[test]
    fn parameters_are_checked_before_anything_is_done() {
        let iam = iam();
        let e = run(&iam, "GetRole", &params(""), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "1 validation error detected: Value null at 'roleName' failed to satisfy constraint: Member must not be null"
        );
        let e = run(&iam, "ListRoles", &params("MaxItems=lots"), None).unwrap_err();
        assert_eq!(e.code(), "ValidationError");
        let e = run(&iam, "ListRoles", &params("MaxItems=99999999999999"), None).unwrap_err();
        assert_eq!(e.code(), "ValidationError");
        let create = form(&[
            ("RoleName", "r"),
            ("AssumeRolePolicyDocument", TRUST),
            ("Tags.member.1.Key", "k"),
        ]);
        let e = run(&iam, "CreateRole", &params(&create), None).unwrap_err();
        assert!(e.to_string().contains("tags.1.member.value"), "{e}");
        let create = form(&[("RoleName", "r"), ("AssumeRolePolicyDocument", "nope")]);
        let e = run(&iam, "CreateRole", &params(&create), None).unwrap_err();
        assert_eq!((e.code(), e.status()), ("MalformedPolicyDocument", 400));
    }

    #[test]
    fn hostile_forms_do_not_panic() {
        let iam = iam();
        for form in [
            "%",
            "%%%",
            "=&=&",
            "RoleName=%ZZ",
            "Tags.member.x.Key=1",
            "Tags.member.99999999999.Key=a",
            "Tags.member.1=x",
            "TagKeys.member.-1=a",
            "RoleName=%00%FF",
            "Marker=&MaxItems=-1",
        ] {
            for action in IAM_ACTIONS.iter().chain(STS_ACTIONS) {
                let _ = run(&iam, action, &params(form), Some(form));
            }
        }
    }
}
