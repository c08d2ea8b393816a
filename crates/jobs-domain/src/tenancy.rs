//! Who owns a job and who may see it (tenancy).

/// The owner of a job: a user within an organization, optionally within a project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The organization (`org` claim; `default` when the token has none).
    pub org_id: String,
    /// The user (`sub` claim, or the `user_id` an admin acts for).
    pub user_id: String,
    /// The project (`X-Project-Id` at creation).
    pub project_id: Option<String>,
}

impl Owner {
    /// An owner from its parts.
    pub fn new(
        org_id: impl Into<String>,
        user_id: impl Into<String>,
        project_id: Option<String>,
    ) -> Self {
        Owner { org_id: org_id.into(), user_id: user_id.into(), project_id }
    }
}

/// The jobs a caller can see: every job of one user, or (for an admin not acting as a user)
/// every job of one organization. Jobs outside it do not exist for that caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Visibility {
    /// The caller's organization.
    pub org_id: String,
    /// The one user whose jobs are visible; `None` for the whole organization.
    pub user_id: Option<String>,
}

impl Visibility {
    /// One user's jobs.
    pub fn user(org_id: impl Into<String>, user_id: impl Into<String>) -> Self {
        Visibility { org_id: org_id.into(), user_id: Some(user_id.into()) }
    }

    /// Every job of an organization.
    pub fn organization(org_id: impl Into<String>) -> Self {
        Visibility { org_id: org_id.into(), user_id: None }
    }

    /// Whether a job with this owner is visible.
    pub fn can_see(&self, owner: &Owner) -> bool {
        self.can_see_user(&owner.org_id, &owner.user_id)
    }

    /// Whether a job of this user of this organization is visible.
    pub fn can_see_user(&self, org_id: &str, user_id: &str) -> bool {
        org_id == self.org_id && self.user_id.as_deref().is_none_or(|u| u == user_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_sees_only_their_own_jobs_and_an_org_sees_all_of_its_own() {
        let mine = Owner::new("acme", "ann", None);
        let theirs = Owner::new("acme", "bob", None);
        let other_org = Owner::new("initech", "ann", None);
        let ann = Visibility::user("acme", "ann");
        assert!(ann.can_see(&mine));
        assert!(!ann.can_see(&theirs));
        assert!(!ann.can_see(&other_org));
        let acme = Visibility::organization("acme");
        assert!(acme.can_see(&mine) && acme.can_see(&theirs));
        assert!(!acme.can_see(&other_org));
    }
}
