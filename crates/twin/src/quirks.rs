//! Device quirks Radar learns from what a device did, recorded on its twin so every later
//! session works around them (and an operator can see why Radar talks to it differently).

use crate::model::Twin;
use radar_core::Timestamp;

/// The device's session died while it was answering a GetParameterValues of an object path
/// (genieacs-sim crashes on them; some CPE firmware does the same): read it by leaf names.
pub const OBJECT_PATH_READS_FAIL: &str = "object_path_reads_fail";

pub fn has(twin: &Twin, quirk: &str) -> bool {
    twin.meta.quirks.iter().any(|q| q == quirk)
}

pub(crate) fn record(twin: &mut Twin, at: Timestamp, quirk: &str, detail: &str) {
    if has(twin, quirk) {
        return;
    }
    twin.meta.quirks.push(quirk.to_owned());
    twin.log(at, "quirk", format!("{quirk}: {detail}"));
}
