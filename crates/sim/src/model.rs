//! The simulated device's data model: a TR-181 home gateway with a few hundred parameters
//! (device info, management server, Wi-Fi radios/SSIDs/access points, Ethernet, IP interfaces,
//! DHCP, hosts, NAT port mappings, time, users). Writability follows TR-181; values look like a
//! real gateway's.

use radar_core::ParamType;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct SimParam {
    pub value: String,
    pub ty: ParamType,
    pub writable: bool,
    /// 0 off, 1 passive, 2 active (TR-069 A.3.2.4).
    pub notification: u8,
}

#[derive(Debug, Clone)]
pub struct SimModel {
    pub params: BTreeMap<String, SimParam>,
    /// Multi-instance tables that accept AddObject, with their next instance number.
    pub tables: BTreeMap<String, u32>,
}

pub struct Identity {
    pub manufacturer: String,
    pub oui: String,
    pub product_class: String,
    pub serial: String,
    pub software_version: String,
    pub connection_request_url: String,
}

impl SimModel {
    pub fn home_gateway(id: &Identity) -> Self {
        let mut m = SimModel {
            params: BTreeMap::new(),
            tables: BTreeMap::new(),
        };
        use ParamType::*;
        let d = "Device.";
        m.ro(&format!("{d}RootDataModelVersion"), "2.17", String);
        m.ro(
            &format!("{d}InterfaceStackNumberOfEntries"),
            "0",
            UnsignedInt,
        );
        let di = format!("{d}DeviceInfo.");
        m.ro(&format!("{di}Manufacturer"), &id.manufacturer, String);
        m.ro(&format!("{di}ManufacturerOUI"), &id.oui, String);
        m.ro(&format!("{di}ModelName"), &id.product_class, String);
        m.ro(
            &format!("{di}Description"),
            "Radar simulated home gateway",
            String,
        );
        m.ro(&format!("{di}ProductClass"), &id.product_class, String);
        m.ro(&format!("{di}SerialNumber"), &id.serial, String);
        m.ro(&format!("{di}HardwareVersion"), "HW-1.0", String);
        m.ro(
            &format!("{di}SoftwareVersion"),
            &id.software_version,
            String,
        );
        m.ro(&format!("{di}AdditionalSoftwareVersion"), "", String);
        m.rw(&format!("{di}ProvisioningCode"), "", String);
        m.ro(&format!("{di}UpTime"), "120", UnsignedInt);
        m.ro(
            &format!("{di}FirstUseDate"),
            "2024-01-01T00:00:00Z",
            DateTime,
        );
        m.ro(&format!("{di}MemoryStatus.Total"), "262144", UnsignedInt);
        m.ro(&format!("{di}MemoryStatus.Free"), "131072", UnsignedInt);
        m.ro(&format!("{di}ProcessStatus.CPUUsage"), "7", UnsignedInt);
        let ms = format!("{d}ManagementServer.");
        m.rw(&format!("{ms}URL"), "", String);
        m.rw(&format!("{ms}Username"), &id.serial, String);
        m.rw(&format!("{ms}Password"), "", String);
        m.rw(&format!("{ms}PeriodicInformEnable"), "true", Boolean);
        m.rw(&format!("{ms}PeriodicInformInterval"), "300", UnsignedInt);
        m.rw(
            &format!("{ms}PeriodicInformTime"),
            "0001-01-01T00:00:00Z",
            DateTime,
        );
        m.ro(&format!("{ms}ParameterKey"), "", String);
        m.ro(
            &format!("{ms}ConnectionRequestURL"),
            &id.connection_request_url,
            String,
        );
        m.rw(&format!("{ms}ConnectionRequestUsername"), "", String);
        m.rw(&format!("{ms}ConnectionRequestPassword"), "", String);
        m.rw(&format!("{ms}UpgradesManaged"), "false", Boolean);
        m.rw(
            &format!("{ms}CWMPRetryMinimumWaitInterval"),
            "5",
            UnsignedInt,
        );
        m.rw(
            &format!("{ms}CWMPRetryIntervalMultiplier"),
            "2000",
            UnsignedInt,
        );
        let time = format!("{d}Time.");
        m.rw(&format!("{time}Enable"), "true", Boolean);
        m.ro(&format!("{time}Status"), "Synchronized", String);
        m.rw(&format!("{time}NTPServer1"), "pool.ntp.org", String);
        m.rw(&format!("{time}NTPServer2"), "", String);
        m.ro(
            &format!("{time}CurrentLocalTime"),
            "2026-01-01T00:00:00Z",
            DateTime,
        );
        m.rw(
            &format!("{time}LocalTimeZone"),
            "CET-1CEST,M3.5.0,M10.5.0/3",
            String,
        );
        // Ethernet: 4 LAN ports and one WAN port.
        for i in 1..=5u32 {
            let e = format!("{d}Ethernet.Interface.{i}.");
            m.rw(&format!("{e}Enable"), "true", Boolean);
            m.ro(
                &format!("{e}Status"),
                if i <= 2 { "Up" } else { "Down" },
                String,
            );
            m.rw(&format!("{e}Alias"), &format!("cpe-eth{i}"), String);
            m.ro(&format!("{e}Name"), &format!("eth{}", i - 1), String);
            m.ro(
                &format!("{e}Upstream"),
                if i == 5 { "true" } else { "false" },
                Boolean,
            );
            m.ro(
                &format!("{e}MACAddress"),
                &format!("00:11:22:33:44:{i:02x}"),
                String,
            );
            m.rw(&format!("{e}MaxBitRate"), "1000", Int);
            m.ro(
                &format!("{e}CurrentBitRate"),
                if i <= 2 { "1000" } else { "0" },
                UnsignedInt,
            );
            m.rw(&format!("{e}DuplexMode"), "Auto", String);
            for stat in [
                "BytesSent",
                "BytesReceived",
                "PacketsSent",
                "PacketsReceived",
                "ErrorsSent",
                "ErrorsReceived",
            ] {
                m.ro(&format!("{e}Stats.{stat}"), "0", UnsignedLong);
            }
        }
        m.ro(
            &format!("{d}Ethernet.InterfaceNumberOfEntries"),
            "5",
            UnsignedInt,
        );
        // Wi-Fi: two radios, two SSIDs and access points.
        for (i, band, channel) in [(1u32, "2.4GHz", "6"), (2, "5GHz", "36")] {
            let r = format!("{d}WiFi.Radio.{i}.");
            m.rw(&format!("{r}Enable"), "true", Boolean);
            m.ro(&format!("{r}Status"), "Up", String);
            m.rw(&format!("{r}Alias"), &format!("cpe-radio{i}"), String);
            m.ro(&format!("{r}Name"), &format!("wl{}", i - 1), String);
            m.ro(&format!("{r}OperatingFrequencyBand"), band, String);
            m.rw(&format!("{r}Channel"), channel, UnsignedInt);
            m.rw(&format!("{r}AutoChannelEnable"), "true", Boolean);
            m.rw(&format!("{r}TransmitPower"), "100", Int);
            m.rw(
                &format!("{r}OperatingStandards"),
                if i == 1 { "b,g,n,ax" } else { "a,n,ac,ax" },
                String,
            );
            m.ro(
                &format!("{r}PossibleChannels"),
                if i == 1 { "1-13" } else { "36,40,44,48" },
                String,
            );
            let s = format!("{d}WiFi.SSID.{i}.");
            m.rw(&format!("{s}Enable"), "true", Boolean);
            m.ro(&format!("{s}Status"), "Up", String);
            m.rw(&format!("{s}Alias"), &format!("cpe-ssid{i}"), String);
            m.ro(&format!("{s}Name"), &format!("wl{}", i - 1), String);
            m.rw(
                &format!("{s}LowerLayers"),
                &format!("Device.WiFi.Radio.{i}."),
                String,
            );
            m.ro(
                &format!("{s}BSSID"),
                &format!("00:11:22:33:55:{i:02x}"),
                String,
            );
            m.ro(
                &format!("{s}MACAddress"),
                &format!("00:11:22:33:55:{i:02x}"),
                String,
            );
            m.rw(
                &format!("{s}SSID"),
                &format!("Radar-{}-{}", &id.serial, band),
                String,
            );
            let a = format!("{d}WiFi.AccessPoint.{i}.");
            m.rw(&format!("{a}Enable"), "true", Boolean);
            m.ro(&format!("{a}Status"), "Enabled", String);
            m.rw(
                &format!("{a}SSIDReference"),
                &format!("Device.WiFi.SSID.{i}."),
                String,
            );
            m.rw(&format!("{a}SSIDAdvertisementEnabled"), "true", Boolean);
            m.rw(&format!("{a}Security.ModeEnabled"), "WPA2-Personal", String);
            m.rw(&format!("{a}Security.KeyPassphrase"), "", String);
            m.ro(
                &format!("{a}AssociatedDeviceNumberOfEntries"),
                "0",
                UnsignedInt,
            );
        }
        m.ro(&format!("{d}WiFi.RadioNumberOfEntries"), "2", UnsignedInt);
        m.ro(&format!("{d}WiFi.SSIDNumberOfEntries"), "2", UnsignedInt);
        // IP interfaces: WAN (1) and LAN (2).
        for (i, name, addr, mask) in [
            (1u32, "wan", "192.0.2.10", "255.255.255.0"),
            (2, "br-lan", "192.168.1.1", "255.255.255.0"),
        ] {
            let ip = format!("{d}IP.Interface.{i}.");
            m.rw(&format!("{ip}Enable"), "true", Boolean);
            m.ro(&format!("{ip}Status"), "Up", String);
            m.rw(&format!("{ip}Alias"), &format!("cpe-ip{i}"), String);
            m.ro(&format!("{ip}Name"), name, String);
            m.rw(&format!("{ip}LowerLayers"), "", String);
            m.ro(&format!("{ip}Type"), "Normal", String);
            m.rw(&format!("{ip}IPv4Enable"), "true", Boolean);
            m.rw(&format!("{ip}MaxMTUSize"), "1500", UnsignedInt);
            let a = format!("{ip}IPv4Address.1.");
            m.rw(&format!("{a}Enable"), "true", Boolean);
            m.ro(&format!("{a}Status"), "Enabled", String);
            m.rw(&format!("{a}IPAddress"), addr, String);
            m.rw(&format!("{a}SubnetMask"), mask, String);
            m.rw(
                &format!("{a}AddressingType"),
                if i == 1 { "DHCP" } else { "Static" },
                String,
            );
            m.ro(&format!("{ip}IPv4AddressNumberOfEntries"), "1", UnsignedInt);
            for stat in [
                "BytesSent",
                "BytesReceived",
                "PacketsSent",
                "PacketsReceived",
            ] {
                m.ro(&format!("{ip}Stats.{stat}"), "0", UnsignedLong);
            }
        }
        m.ro(&format!("{d}IP.InterfaceNumberOfEntries"), "2", UnsignedInt);
        m.rw(&format!("{d}IP.IPv4Enable"), "true", Boolean);
        m.ro(&format!("{d}IP.IPv4Status"), "Enabled", String);
        // DHCPv4 server pool.
        let pool = format!("{d}DHCPv4.Server.Pool.1.");
        m.rw(&format!("{d}DHCPv4.Server.Enable"), "true", Boolean);
        m.rw(&format!("{pool}Enable"), "true", Boolean);
        m.ro(&format!("{pool}Status"), "Enabled", String);
        m.rw(
            &format!("{pool}Interface"),
            "Device.IP.Interface.2.",
            String,
        );
        m.rw(&format!("{pool}MinAddress"), "192.168.1.100", String);
        m.rw(&format!("{pool}MaxAddress"), "192.168.1.200", String);
        m.rw(&format!("{pool}SubnetMask"), "255.255.255.0", String);
        m.rw(&format!("{pool}DNSServers"), "192.168.1.1", String);
        m.rw(&format!("{pool}DomainName"), "lan", String);
        m.rw(&format!("{pool}IPRouters"), "192.168.1.1", String);
        m.rw(&format!("{pool}LeaseTime"), "86400", Int);
        // Hosts seen on the LAN.
        for i in 1..=8u32 {
            let h = format!("{d}Hosts.Host.{i}.");
            m.ro(
                &format!("{h}PhysAddress"),
                &format!("a4:5e:60:00:00:{i:02x}"),
                String,
            );
            m.ro(
                &format!("{h}IPAddress"),
                &format!("192.168.1.{}", 100 + i),
                String,
            );
            m.ro(&format!("{h}HostName"), &format!("host-{i}"), String);
            m.ro(
                &format!("{h}Active"),
                if i % 3 == 0 { "false" } else { "true" },
                Boolean,
            );
            m.ro(
                &format!("{h}Layer1Interface"),
                "Device.WiFi.SSID.1.",
                String,
            );
            m.ro(&format!("{h}LeaseTimeRemaining"), "43200", Int);
        }
        m.ro(&format!("{d}Hosts.HostNumberOfEntries"), "8", UnsignedInt);
        // NAT port mappings: a table operators add to.
        m.rw(&format!("{d}NAT.PortMapping.1.Enable"), "true", Boolean);
        m.rw(
            &format!("{d}NAT.PortMapping.1.Interface"),
            "Device.IP.Interface.1.",
            String,
        );
        m.rw(
            &format!("{d}NAT.PortMapping.1.ExternalPort"),
            "8080",
            UnsignedInt,
        );
        m.rw(
            &format!("{d}NAT.PortMapping.1.InternalPort"),
            "80",
            UnsignedInt,
        );
        m.rw(&format!("{d}NAT.PortMapping.1.Protocol"), "TCP", String);
        m.rw(
            &format!("{d}NAT.PortMapping.1.InternalClient"),
            "192.168.1.101",
            String,
        );
        m.rw(&format!("{d}NAT.PortMapping.1.Description"), "web", String);
        m.ro(
            &format!("{d}NAT.PortMappingNumberOfEntries"),
            "1",
            UnsignedInt,
        );
        m.tables.insert(format!("{d}NAT.PortMapping."), 2);
        // DNS client and users.
        m.rw(&format!("{d}DNS.Client.Enable"), "true", Boolean);
        m.rw(
            &format!("{d}DNS.Client.Server.1.DNSServer"),
            "198.51.100.53",
            String,
        );
        m.rw(&format!("{d}Users.User.1.Enable"), "true", Boolean);
        m.rw(&format!("{d}Users.User.1.Username"), "admin", String);
        m.rw(&format!("{d}Users.User.1.Password"), "", String);
        // Device logs and diagnostics.
        m.ro(
            &format!("{d}DeviceInfo.VendorLogFileNumberOfEntries"),
            "1",
            UnsignedInt,
        );
        m.ro(
            &format!("{d}DeviceInfo.VendorLogFile.1.Name"),
            "/var/log/messages",
            String,
        );
        m.rw(&format!("{d}IP.Diagnostics.IPPing.Host"), "", String);
        m.rw(
            &format!("{d}IP.Diagnostics.IPPing.NumberOfRepetitions"),
            "3",
            UnsignedInt,
        );
        m.rw(
            &format!("{d}IP.Diagnostics.IPPing.Timeout"),
            "1000",
            UnsignedInt,
        );
        m.ro(
            &format!("{d}IP.Diagnostics.IPPing.SuccessCount"),
            "0",
            UnsignedInt,
        );
        // A vendor extension, read-write, as real gateways have.
        m.rw(&format!("{d}X_RADAR_SIM_LedBrightness"), "80", UnsignedInt);
        m.ro(&format!("{d}X_RADAR_SIM_Temperature"), "48", Int);
        m
    }

    pub(crate) fn ro(&mut self, path: &str, value: &str, ty: ParamType) {
        self.params.insert(
            path.into(),
            SimParam {
                value: value.into(),
                ty,
                writable: false,
                notification: 0,
            },
        );
    }

    pub(crate) fn rw(&mut self, path: &str, value: &str, ty: ParamType) {
        self.params.insert(
            path.into(),
            SimParam {
                value: value.into(),
                ty,
                writable: true,
                notification: 0,
            },
        );
    }

    /// The ManagementServer parameters of a CPE behind a NAT that uses STUN (TR-069 Annex G,
    /// TR-181 `Device.ManagementServer.STUN*`, `NATDetected`, `UDPConnectionRequestAddress`).
    pub fn add_stun(&mut self, server: std::net::SocketAddr, username: &str) {
        use ParamType::*;
        let ms = "Device.ManagementServer.";
        self.rw(&format!("{ms}STUNEnable"), "true", Boolean);
        self.rw(
            &format!("{ms}STUNServerAddress"),
            &server.ip().to_string(),
            String,
        );
        self.rw(
            &format!("{ms}STUNServerPort"),
            &server.port().to_string(),
            UnsignedInt,
        );
        self.rw(&format!("{ms}STUNUsername"), username, String);
        self.rw(&format!("{ms}STUNPassword"), "", String);
        self.rw(&format!("{ms}STUNMaximumKeepAlivePeriod"), "30", Int);
        self.rw(
            &format!("{ms}STUNMinimumKeepAlivePeriod"),
            "10",
            UnsignedInt,
        );
        self.ro(&format!("{ms}NATDetected"), "false", Boolean);
        self.ro(&format!("{ms}UDPConnectionRequestAddress"), "", String);
    }

    /// The Annex K parameters of a CPE that takes connection requests over XMPP.
    pub fn add_xmpp(&mut self, allowed: &str) {
        use ParamType::*;
        let ms = "Device.ManagementServer.";
        self.rw(&format!("{ms}ConnReqAllowedJabberIDs"), allowed, String);
        self.rw(
            &format!("{ms}ConnReqXMPPConnection"),
            "Device.XMPP.Connection.1",
            String,
        );
        self.ro(&format!("{ms}ConnReqJabberID"), "", String);
        self.ro(
            &format!("{ms}SupportedConnReqMethods"),
            "HTTP,STUN,XMPP",
            String,
        );
        self.rw("Device.XMPP.Connection.1.Enable", "true", Boolean);
        self.ro("Device.XMPP.Connection.1.Status", "Disabled", String);
        self.ro("Device.XMPP.Connection.1.JabberID", "", String);
    }

    /// Every object path implied by the parameters (TR-069 GetParameterNames lists objects too).
    pub fn objects(&self) -> Vec<String> {
        let mut objects = std::collections::BTreeSet::new();
        for path in self.params.keys() {
            let mut end = 0;
            while let Some(i) = path[end..].find('.') {
                end += i + 1;
                objects.insert(path[..end].to_owned());
            }
        }
        objects.into_iter().collect()
    }

    pub fn get(&self, path: &str) -> Option<&SimParam> {
        self.params.get(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_has_a_few_hundred_parameters() {
        let id = Identity {
            manufacturer: "Radar".into(),
            oui: "00D09E".into(),
            product_class: "HG-SIM".into(),
            serial: "SIM0001".into(),
            software_version: "1.0.0".into(),
            connection_request_url: "http://127.0.0.1:1/cr".into(),
        };
        let m = SimModel::home_gateway(&id);
        assert!(m.params.len() >= 200, "{}", m.params.len());
        assert!(m.objects().contains(&"Device.WiFi.SSID.1.".to_string()));
        assert!(m.get("Device.WiFi.SSID.1.SSID").unwrap().writable);
        assert!(!m.get("Device.DeviceInfo.SoftwareVersion").unwrap().writable);
    }
}
