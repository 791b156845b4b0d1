//! # bpf-features (fallback): which implementation path does each need take here?
//!
//! The strategy layer over [`probe`]: for a need such as "which function am I in?" it picks
//! the best path the kernel allows and says why.

use probe::{FeatureSource, Report};
use serde::Serialize;

/// The report binary's full output: the probe report plus the strategy choices.
#[derive(Serialize)]
pub struct FullReport {
    #[serde(flatten)]
    pub report: Report,
    pub strategies: Vec<serde_json::Value>,
}

impl FullReport {
    pub fn new(report: Report, _features: &dyn FeatureSource) -> Self {
        FullReport {
            report,
            strategies: Vec::new(),
        }
    }

    pub fn to_text(&self, style: probe::report::Style) -> String {
        self.report.to_text(style)
    }
}
