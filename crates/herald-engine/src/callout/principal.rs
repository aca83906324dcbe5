//! Stage 1 of a callout: the principal of the external credential that the running user's permission
//! sets grant (Salesforce's External Credential Principal Access), or a fault that names the grant
//! and the permission set to assign.

use crate::Engine;
use herald_flow::RunUser;
use herald_project::{PrincipalType, Protocol};

impl Engine {
    /// The first principal of `external` that the running user's permission sets grant.
    pub(crate) async fn principal_for(
        &self,
        external: &str,
        user: &RunUser,
    ) -> Result<(String, PrincipalType), String> {
        let compiled = self.project();
        let project = &compiled.project;
        let granted = self.permission_sets_of(user).await.map_err(|e| e.to_string())?;
        let Some(definition) = project.external_credentials.get(external) else {
            return Err(format!("external credential {external} is not defined"));
        };
        if definition.def.protocol == Protocol::NoAuthentication && definition.def.principals.is_empty() {
            return Ok((String::new(), PrincipalType::Named));
        }
        for principal in &definition.def.principals {
            let grant = format!("{external}-{}", principal.name);
            let has = granted
                .iter()
                .filter_map(|set| project.permission_sets.get(set))
                .any(|set| set.def.external_credential_principal_access.contains(&grant));
            if has {
                return Ok((principal.name.clone(), principal.principal_type));
            }
        }
        let grants: Vec<String> =
            definition.def.principals.iter().map(|p| format!("{external}-{}", p.name)).collect();
        let sets: Vec<&str> = project
            .permission_sets
            .values()
            .filter(|s| s.def.external_credential_principal_access.iter().any(|g| grants.contains(g)))
            .map(|s| s.def.name.as_str())
            .collect();
        let how = if user.id == crate::AUTOMATION_USER_ID {
            "add it to [automation] permission_sets in herald.toml".to_string()
        } else {
            format!("herald user add creates users with --permission-set; assign it to {}", user.name)
        };
        let assign = if sets.is_empty() {
            format!("create a permission set that grants {} and assign it", grants.join(" or "))
        } else {
            format!("assign permission set {} ({how})", sets.join(" or "))
        };
        Err(format!(
            "user {} has no access to external credential {external}: no assigned permission set grants External Credential Principal Access to {}; {assign}",
            user.name,
            grants.join(" or "),
        ))
    }
}
