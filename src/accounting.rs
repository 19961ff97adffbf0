//! Snapshot → accounting series (issue 3 fills this in).

use crate::metrics::SourceReport;
use crate::output::exposition::{Exposition, ExpositionBuilder};

/// Settings of the accounting view.
#[derive(Debug, Clone, Default)]
pub struct AccountingConfig {}

/// Renders the accounting families over every source's last report.
pub fn render(_reports: &[&SourceReport], _config: &AccountingConfig) -> Exposition {
    ExpositionBuilder::default().finish()
}
