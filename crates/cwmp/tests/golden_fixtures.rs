//! Golden tests over real CWMP messages from real devices (tests/fixtures/cwmp, see SOURCES.md).
//! Every fixture must decode, and the Informs must yield the right device identity and parameters.

use radar_core::DeviceKey;
use radar_cwmp::{CwmpMessage, CwmpVersion, Envelope};
use std::path::PathBuf;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cwmp")
}

fn load(name: &str) -> Envelope {
    let bytes = std::fs::read(fixture_dir().join(name)).unwrap();
    Envelope::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn inform(name: &str) -> (Envelope, radar_cwmp::rpc::inform::Inform) {
    let env = load(name);
    match env.message.clone() {
        CwmpMessage::Inform(i) => (env, i),
        other => panic!("{name}: expected Inform, got {}", other.name()),
    }
}

#[test]
fn every_fixture_decodes_to_the_method_in_its_name() {
    let mut count = 0;
    for entry in std::fs::read_dir(fixture_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("xml") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let env = load(&name);
        // File names are `<source>_<Method>[-variant]_<n>.xml`.
        let method = name.split('_').nth(1).unwrap().split('-').next().unwrap();
        assert_eq!(env.message.name(), method, "{name}");
        // Re-encoding and decoding again yields the same message: encoders and decoders agree.
        let again = Envelope::decode(env.encode().as_bytes())
            .unwrap_or_else(|e| panic!("{name} re-decode: {e}"));
        assert_eq!(again.message, env.message, "{name} round trip");
        count += 1;
    }
    assert!(count >= 60, "only {count} fixtures found");
}

#[test]
fn informs_yield_device_keys_and_parameters() {
    let cases = [
        ("huawei_Inform_1.xml", "os::202BC1-8KA8WA1151100043"),
        ("thomson_Inform_1.xml", "os::00147F-"),
        ("zhone_Inform_1.xml", "os::"),
        ("zyxel_Inform_1.xml", "os::"),
        ("mikrotik_Inform_1.xml", "os::E48D8C-XXXXXXXXXXXX"),
        ("sagemcom_Inform_1.xml", "os::40F201-"),
        ("motorola_Inform_1.xml", "os::"),
        ("zte_Inform_1.xml", "os::"),
        ("cytco_Inform_1.xml", "os::"),
    ];
    for (file, prefix) in cases {
        let (_, inform) = inform(file);
        let key =
            DeviceKey::from_oui_serial(&inform.device_id.oui, &inform.device_id.serial_number)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(key.as_str().starts_with(prefix), "{file}: {key}");
        assert!(!inform.events.is_empty(), "{file}: no events");
        assert!(!inform.parameters.is_empty(), "{file}: no parameters");
        assert!(
            inform.parameters.iter().all(|p| !p.name.is_empty()),
            "{file}"
        );
        // Every ParameterValueStruct in the raw message is decoded, none dropped or invented.
        let raw = std::fs::read(fixture_dir().join(file)).unwrap();
        let raw = String::from_utf8_lossy(&raw);
        assert_eq!(
            inform.parameters.len(),
            raw.matches("<ParameterValueStruct>").count(),
            "{file}"
        );
    }
}

#[test]
fn mikrotik_inform_without_header_and_with_single_quotes() {
    let (env, inform) = inform("mikrotik_Inform_1.xml");
    assert_eq!(env.id, None);
    assert_eq!(inform.device_id.product_class, "hAP lite");
    assert_eq!(inform.events[0].code, "8 DIAGNOSTICS COMPLETE");
    let sw = inform
        .parameters
        .iter()
        .find(|p| p.name == "Device.DeviceInfo.SoftwareVersion")
        .unwrap();
    assert_eq!(sw.value, "6.42rc49");
    assert_eq!(sw.xsd_type.as_deref(), Some("xsd:string"));
    assert_eq!(inform.parameters.len(), 7);
}

#[test]
fn zhone_lowercase_oui_is_normalised_and_bootstrap_seen() {
    let (_, inform) = inform("zhone_Inform_1.xml");
    assert!(inform.has_event("0 BOOTSTRAP"));
    assert!(inform.has_event("1 BOOT"));
    let key =
        DeviceKey::from_oui_serial(&inform.device_id.oui, &inform.device_id.serial_number).unwrap();
    assert_eq!(
        &key.as_str()[4..10],
        inform.device_id.oui.to_ascii_uppercase()
    );
}

#[test]
fn thomson_inform_echoes_id_and_keeps_padded_numbers() {
    let (env, inform) = inform("thomson_Inform_2.xml");
    assert!(env.id.as_deref().unwrap().contains("THOM"));
    assert_eq!(inform.events.len(), 3);
    assert_eq!(env.version, CwmpVersion::V1_0);
}

#[test]
fn versions_are_detected_by_namespace() {
    assert_eq!(
        load("generic_Inform-cwmp11_1.xml").version,
        CwmpVersion::V1_1
    );
    assert_eq!(
        load("generic_Inform-cwmp12_1.xml").version,
        CwmpVersion::V1_2
    );
    assert_eq!(
        load("generic_GetRPCMethodsResponse-cwmp14_1.xml").version,
        CwmpVersion::V1_4
    );
}

#[test]
fn faults_carry_codes_and_set_parameter_values_details() {
    let env = load("generic_Fault-spv_1.xml");
    let CwmpMessage::Fault(fault) = env.message else {
        panic!()
    };
    assert_eq!(fault.code, 9005);
    assert_eq!(fault.set_parameter_values_faults.len(), 2);
    assert_eq!(fault.set_parameter_values_faults[1].code, 9006);
    let CwmpMessage::Fault(thomson) = load("thomson_Fault_1.xml").message else {
        panic!()
    };
    assert_eq!(
        (thomson.code, thomson.message.as_str()),
        (9001, "Request Denied")
    );
}

#[test]
fn cisco_value_without_value_element_is_kept_empty() {
    let CwmpMessage::GetParameterValuesResponse(r) =
        load("cisco_GetParameterValuesResponse_1.xml").message
    else {
        panic!()
    };
    assert_eq!(r.parameters.len(), 1);
    assert_eq!(r.parameters[0].name, "Device.DeviceInfo.DeviceLog");
    assert_eq!(r.parameters[0].value, "");
}

#[test]
fn huge_gpn_responses_parse() {
    let CwmpMessage::GetParameterNamesResponse(r) =
        load("thomson_GetParameterNamesResponse_2.xml").message
    else {
        panic!()
    };
    assert!(r.parameters.len() > 1000, "{}", r.parameters.len());
    let CwmpMessage::GetParameterNamesResponse(r) =
        load("anon-zactive_GetParameterNamesResponse_1.xml").message
    else {
        panic!()
    };
    assert_eq!(r.parameters.len(), 1384);
    assert!(r.parameters.iter().any(|p| p.writable));
}

#[test]
fn transfer_complete_fault_codes() {
    let CwmpMessage::TransferComplete(ok) = load("generic_TransferComplete_1.xml").message else {
        panic!()
    };
    assert_eq!(ok.fault.code, 0);
    assert_eq!(ok.command_key, "AutoconfFirmwareUpgrade");
    let CwmpMessage::TransferComplete(failed) = load("generic_TransferComplete_2.xml").message
    else {
        panic!()
    };
    assert_eq!(failed.fault.code, 9001);
}
