//! A session fed arbitrary POST bodies (split on a separator byte) never panics and answers each
//! POST with at most one reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use radar_core::Timestamp;
use radar_cwmp::message::CwmpMessage;
use radar_cwmp::rpc::get_parameter_values::GetParameterValues;
use radar_cwmp::session::{AcsSession, Input, Origin, Output, SessionConfig, Task};

/// Work of every shape, so the CPE's (fuzzed) answers meet each kind of outstanding request:
/// a tree read that carries an operation, a GetParameterValues of an object path, a discovery.
fn work() -> Vec<Task> {
    vec![
        Task::ReadTree {
            prefix: "Device.ManagementServer.".into(),
            origin: Some(Origin::Operation(1)),
        },
        Task::Rpc {
            origin: Origin::Operation(2),
            message: CwmpMessage::GetParameterValues(GetParameterValues {
                names: vec!["Device.DeviceInfo.".into()],
            }),
        },
        Task::Discover {
            prefix: "Device.".into(),
        },
    ]
}

fuzz_target!(|data: &[u8]| {
    let now = Timestamp(1_000_000);
    let mut session = AcsSession::new(
        SessionConfig {
            gpv_batch_size: 2,
            ..Default::default()
        },
        now,
    );
    let mut given = false;
    for body in data.split(|&b| b == 0xFF) {
        if session.is_closed() {
            break;
        }
        let _ = session.handle(now, Input::Post(body));
        let mut replies = 0;
        while let Some(output) = session.poll_output() {
            match output {
                Output::Reply(_) => replies += 1,
                Output::NeedWork => {
                    let tasks = if std::mem::replace(&mut given, true) {
                        Vec::new()
                    } else {
                        work()
                    };
                    let _ = session.handle(now, Input::Work(tasks));
                }
                _ => {}
            }
        }
        assert!(replies <= 1, "one reply per POST");
    }
});
