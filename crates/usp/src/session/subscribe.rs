//! The subscription check of an agent session: read the agent's controller and subscription
//! tables and ask which referenced objects its data model has (both at once), then reconcile
//! Radar's own rows, add what is missing and supported, and report where every wanted
//! subscription stands, as the agent answered.
//!
//! It runs on every connect (gating operations, so none is sent before the twin can be live)
//! and again after every `Boot!`, since agents drop non-persistent subscriptions at a reboot.

use super::{AgentSession, SessionEvent, Tag, CONTROLLER_TABLE};
use crate::errors;
use crate::inbound::PathValue;
use crate::msg;
use crate::proto::msg::add_resp::created_object_result::operation_status::OperStatus;
use crate::proto::msg::{response, AddResp};
use crate::request::Failure;
use crate::subscription_support::{request_paths, SupportedObjects};
use crate::subscriptions::{self, Desired, Report, Standing, SUBSCRIPTION_TABLE};
use radar_core::Timestamp;
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub(super) struct SubscriptionCheck {
    /// The connect-time check holds operations back until it is done; a re-check does not.
    blocking: bool,
    table: Option<Vec<PathValue>>,
    /// `Some(None)`: the agent would not answer GetSupportedDM, so every wanted subscription is
    /// tried and its answer recorded.
    support: Option<Option<SupportedObjects>>,
    /// Change requests (Delete, Set, Add) still unanswered.
    pending: usize,
    /// Both reads were answered and the changes sent.
    reconciled: bool,
    reports: BTreeMap<String, Report>,
    removed: usize,
}

impl AgentSession {
    pub(super) fn start_subscription_check(&mut self, now: Timestamp, blocking: bool) {
        if !blocking && self.subscription_check.is_some() {
            return;
        }
        self.subscription_check = Some(Box::new(SubscriptionCheck {
            blocking,
            ..Default::default()
        }));
        let tables = vec![CONTROLLER_TABLE.to_owned(), SUBSCRIPTION_TABLE.to_owned()];
        self.send(now, Tag::SubscriptionTable, |id| msg::get(id, &tables, 0));
        let paths = request_paths(&self.config.subscriptions);
        self.send(now, Tag::SubscriptionSupport, |id| {
            msg::get_supported_dm(id, &paths, true)
        });
    }

    /// The table Get's answer (`None`: it failed, and the check ends without changes).
    pub(super) fn on_subscription_table(&mut self, now: Timestamp, values: Option<Vec<PathValue>>) {
        let Some(check) = self.subscription_check.as_mut() else {
            return;
        };
        match values {
            Some(values) => {
                check.table = Some(values);
                self.maybe_reconcile(now);
            }
            None => self.finish_subscription_check(),
        }
    }

    pub(super) fn on_subscription_support(
        &mut self,
        now: Timestamp,
        support: Option<SupportedObjects>,
    ) {
        let Some(check) = self.subscription_check.as_mut() else {
            return;
        };
        check.support = Some(support);
        self.maybe_reconcile(now);
    }

    fn maybe_reconcile(&mut self, now: Timestamp) {
        let Some(check) = self.subscription_check.as_mut() else {
            return;
        };
        if check.table.is_none() || check.support.is_none() {
            return;
        }
        let (Some(values), Some(support)) = (check.table.take(), check.support.take()) else {
            return;
        };
        check.reconciled = true;
        // Radar's entry in the agent's controller table: the agent names it as the Recipient
        // of every row Radar created.
        let recipient = values.iter().find_map(|v| {
            let rest = v.path.strip_prefix(CONTROLLER_TABLE)?;
            let (n, field) = rest.split_once('.')?;
            (field == "EndpointID" && v.value == self.config.controller_id)
                .then(|| format!("{CONTROLLER_TABLE}{n}"))
        });
        let Some(recipient) = recipient else {
            self.emit(SessionEvent::RequestFailed {
                what: "subscriptions",
                failure: Failure::new(
                    errors::REQUEST_DENIED,
                    format!(
                        "agent has no Device.LocalAgent.Controller entry for {}",
                        self.config.controller_id
                    ),
                ),
            });
            self.finish_subscription_check();
            return;
        };
        let mut wanted = Vec::new();
        let config = self.config.clone();
        for d in config.subscriptions.iter() {
            match support.as_ref().map(|s| s.check(d)) {
                Some(Err(reason)) => self.record(d, Standing::NotInDataModel { reason }),
                _ => wanted.push(d.clone()),
            }
        }
        let table = subscriptions::parse_table(&values);
        let plan = subscriptions::reconcile(&table, &wanted, &recipient);
        for d in wanted.iter().filter(|d| !plan.add.contains(d)) {
            self.record(
                d,
                Standing::InPlace {
                    note: String::new(),
                },
            );
        }
        if !plan.delete.is_empty() {
            let paths = plan.delete.clone();
            self.send_subscription_change(now, Vec::new(), false, |id| {
                msg::delete(id, true, &paths)
            });
        }
        if !plan.enable.is_empty() {
            let objects: Vec<msg::SetObject> = plan
                .enable
                .iter()
                .map(|p| (p.clone(), vec![("Enable".into(), "true".into(), true)]))
                .collect();
            self.send_subscription_change(now, Vec::new(), false, |id| {
                msg::set(id, true, &objects)
            });
        }
        if !plan.add.is_empty() {
            self.send_add(now, plan.add, true);
        }
        self.maybe_finish_subscription_check();
    }

    fn send_add(&mut self, now: Timestamp, added: Vec<Desired>, with_optional: bool) {
        let create_objs = added
            .iter()
            .map(|d| {
                msg::create_object(
                    SUBSCRIPTION_TABLE,
                    &subscriptions::add_params(d, with_optional),
                )
            })
            .collect();
        // allow_partial: one refused subscription (7005, 7018) must not sink the others.
        self.send_subscription_change(now, added, with_optional, |id| {
            msg::add_many(id, true, create_objs)
        });
    }

    fn send_subscription_change(
        &mut self,
        now: Timestamp,
        added: Vec<Desired>,
        with_optional: bool,
        build: impl FnOnce(&str) -> crate::proto::msg::Msg,
    ) {
        if let Some(check) = self.subscription_check.as_mut() {
            check.pending += 1;
        }
        self.send(
            now,
            Tag::SubscriptionChange {
                added,
                with_optional,
            },
            build,
        );
    }

    /// The answer to a Delete, Set or Add of subscriptions (`Err`: an Error message instead).
    pub(super) fn on_subscription_change(
        &mut self,
        now: Timestamp,
        added: Vec<Desired>,
        with_optional: bool,
        resp: Result<response::RespType, Failure>,
    ) {
        let mut retry = Vec::new();
        match resp {
            Ok(response::RespType::AddResp(r)) => {
                retry = self.on_add_resp(&added, with_optional, &r);
            }
            Ok(response::RespType::DeleteResp(r)) => {
                if let Some(check) = self.subscription_check.as_mut() {
                    check.removed += r.deleted_obj_results.len();
                }
            }
            Ok(_) => {}
            // The whole Add was refused; the essentials alone may pass.
            Err(_) if with_optional && !added.is_empty() => retry = added,
            Err(failure) => {
                for d in &added {
                    self.record(
                        d,
                        Standing::Refused {
                            code: failure.code,
                            message: failure.message.clone(),
                        },
                    );
                }
            }
        }
        if !retry.is_empty() {
            // TR-369 leaves optional subscription parameters (Persistent, NotifRetry) to the
            // agent; one that refuses them still gets the subscription.
            self.send_add(now, retry, false);
        }
        if let Some(check) = self.subscription_check.as_mut() {
            check.pending = check.pending.saturating_sub(1);
        }
        self.maybe_finish_subscription_check();
    }

    /// Records each created object's outcome; returns the ones worth retrying without the
    /// optional parameters.
    fn on_add_resp(&mut self, added: &[Desired], with_optional: bool, r: &AddResp) -> Vec<Desired> {
        let mut retry = Vec::new();
        for (i, d) in added.iter().enumerate() {
            let status = r
                .created_obj_results
                .get(i)
                .and_then(|c| c.oper_status.as_ref())
                .and_then(|s| s.oper_status.as_ref());
            let standing = match status {
                Some(OperStatus::OperSuccess(s)) => Standing::InPlace {
                    note: s
                        .param_errs
                        .iter()
                        .map(|e| format!("{} refused ({} {})", e.param, e.err_code, e.err_msg))
                        .collect::<Vec<_>>()
                        .join("; "),
                },
                // TR-369 §7.7: 7025 is the unique key (ID, Recipient) already taken, i.e. this
                // controller's row with this ID exists: adopt it.
                Some(OperStatus::OperFailure(f)) if f.err_code == errors::UNIQUE_KEY_CONFLICT => {
                    Standing::InPlace {
                        note: "adopted the agent's existing row (7025)".into(),
                    }
                }
                Some(OperStatus::OperFailure(f))
                    if with_optional && retry_without_optional(f.err_code) =>
                {
                    retry.push(d.clone());
                    continue;
                }
                Some(OperStatus::OperFailure(f)) => Standing::Refused {
                    code: f.err_code,
                    message: f.err_msg.clone(),
                },
                None => Standing::Refused {
                    code: errors::MESSAGE_FAILED,
                    message: "the AddResp has no result for it".into(),
                },
            };
            self.record(d, standing);
        }
        retry
    }

    fn record(&mut self, d: &Desired, standing: Standing) {
        if let Some(check) = self.subscription_check.as_mut() {
            check.reports.insert(
                d.id(),
                Report {
                    desired: d.clone(),
                    standing,
                },
            );
        }
    }

    fn maybe_finish_subscription_check(&mut self) {
        if self
            .subscription_check
            .as_ref()
            .is_some_and(|c| c.reconciled && c.pending == 0)
        {
            self.finish_subscription_check();
        }
    }

    pub(super) fn finish_subscription_check(&mut self) {
        let Some(check) = self.subscription_check.take() else {
            return;
        };
        let mut reports = check.reports;
        // In the configured order, so the twin's list reads like the configuration.
        let ordered: Vec<Report> = self
            .config
            .subscriptions
            .iter()
            .filter_map(|d| reports.remove(&d.id()))
            .collect();
        if !ordered.is_empty() || check.removed > 0 {
            self.emit(SessionEvent::Subscriptions {
                reports: ordered,
                removed: check.removed,
            });
        }
        if check.blocking && !self.subscriptions_done {
            self.subscriptions_done = true;
            self.maybe_need_work();
        }
    }
}

/// Errors that may come from an optional parameter (unknown, read-only, bad value), so an Add
/// with the essentials alone may pass.
fn retry_without_optional(code: u32) -> bool {
    matches!(
        code,
        errors::MESSAGE_FAILED
            | errors::INVALID_ARGUMENTS
            | 7010 // unsupported parameter
            | 7011 // invalid type
            | 7012 // invalid value
            | errors::PARAM_READ_ONLY
            | 7021 // required parameter failed
            | errors::INVALID_PATH
    )
}
