//! Every CWMP message Radar understands, in both directions.

use crate::rpc::add_object::{AddObject, AddObjectResponse};
use crate::rpc::delete_object::{DeleteObject, DeleteObjectResponse};
use crate::rpc::download::{Download, DownloadResponse};
use crate::rpc::du_state_change_complete::DuStateChangeComplete;
use crate::rpc::factory_reset::{FactoryReset, FactoryResetResponse};
use crate::rpc::fault::CwmpFault;
use crate::rpc::get_parameter_attributes::{
    GetParameterAttributes, GetParameterAttributesResponse,
};
use crate::rpc::get_parameter_names::{GetParameterNames, GetParameterNamesResponse};
use crate::rpc::get_parameter_values::{GetParameterValues, GetParameterValuesResponse};
use crate::rpc::get_rpc_methods::{GetRpcMethods, GetRpcMethodsResponse};
use crate::rpc::inform::{Inform, InformResponse};
use crate::rpc::kicked::Kicked;
use crate::rpc::reboot::{Reboot, RebootResponse};
use crate::rpc::request_download::RequestDownload;
use crate::rpc::schedule_inform::{ScheduleInform, ScheduleInformResponse};
use crate::rpc::set_parameter_attributes::{
    SetParameterAttributes, SetParameterAttributesResponse,
};
use crate::rpc::set_parameter_values::{SetParameterValues, SetParameterValuesResponse};
use crate::rpc::transfer_complete::{AutonomousTransferComplete, TransferComplete};
use crate::rpc::upload::{Upload, UploadResponse};
use crate::xml::Element;
use crate::DecodeError;

#[derive(Debug, Clone, PartialEq)]
pub enum CwmpMessage {
    // CPE → ACS requests.
    Inform(Inform),
    TransferComplete(TransferComplete),
    AutonomousTransferComplete(AutonomousTransferComplete),
    DuStateChangeComplete(DuStateChangeComplete),
    RequestDownload(RequestDownload),
    Kicked(Kicked),
    // Either direction.
    GetRpcMethods(GetRpcMethods),
    GetRpcMethodsResponse(GetRpcMethodsResponse),
    Fault(CwmpFault),
    // ACS → CPE requests.
    GetParameterNames(GetParameterNames),
    GetParameterValues(GetParameterValues),
    SetParameterValues(SetParameterValues),
    GetParameterAttributes(GetParameterAttributes),
    SetParameterAttributes(SetParameterAttributes),
    AddObject(AddObject),
    DeleteObject(DeleteObject),
    Reboot(Reboot),
    FactoryReset(FactoryReset),
    Download(Download),
    Upload(Upload),
    ScheduleInform(ScheduleInform),
    // ACS → CPE responses.
    InformResponse(InformResponse),
    TransferCompleteResponse,
    AutonomousTransferCompleteResponse,
    DuStateChangeCompleteResponse,
    RequestDownloadResponse,
    // CPE → ACS responses.
    GetParameterNamesResponse(GetParameterNamesResponse),
    GetParameterValuesResponse(GetParameterValuesResponse),
    SetParameterValuesResponse(SetParameterValuesResponse),
    GetParameterAttributesResponse(GetParameterAttributesResponse),
    SetParameterAttributesResponse(SetParameterAttributesResponse),
    AddObjectResponse(AddObjectResponse),
    DeleteObjectResponse(DeleteObjectResponse),
    RebootResponse(RebootResponse),
    FactoryResetResponse(FactoryResetResponse),
    DownloadResponse(DownloadResponse),
    UploadResponse(UploadResponse),
    ScheduleInformResponse(ScheduleInformResponse),
}

impl CwmpMessage {
    pub(crate) fn decode(el: &Element, is_fault: bool) -> Result<Self, DecodeError> {
        if is_fault {
            return Ok(CwmpMessage::Fault(CwmpFault::decode(el)?));
        }
        Ok(match el.name.as_str() {
            "Inform" => CwmpMessage::Inform(Inform::decode(el)?),
            "TransferComplete" => CwmpMessage::TransferComplete(TransferComplete::decode(el)?),
            "AutonomousTransferComplete" => {
                CwmpMessage::AutonomousTransferComplete(AutonomousTransferComplete::decode(el)?)
            }
            "DUStateChangeComplete" => {
                CwmpMessage::DuStateChangeComplete(DuStateChangeComplete::decode(el)?)
            }
            "RequestDownload" => CwmpMessage::RequestDownload(RequestDownload::decode(el)?),
            "Kicked" => CwmpMessage::Kicked(Kicked::decode(el)?),
            "GetRPCMethods" => CwmpMessage::GetRpcMethods(GetRpcMethods),
            "GetRPCMethodsResponse" => {
                CwmpMessage::GetRpcMethodsResponse(GetRpcMethodsResponse::decode(el)?)
            }
            "GetParameterNames" => CwmpMessage::GetParameterNames(GetParameterNames::decode(el)?),
            "GetParameterValues" => {
                CwmpMessage::GetParameterValues(GetParameterValues::decode(el)?)
            }
            "SetParameterValues" => {
                CwmpMessage::SetParameterValues(SetParameterValues::decode(el)?)
            }
            "GetParameterAttributes" => {
                CwmpMessage::GetParameterAttributes(GetParameterAttributes::decode(el)?)
            }
            "SetParameterAttributes" => {
                CwmpMessage::SetParameterAttributes(SetParameterAttributes::decode(el)?)
            }
            "AddObject" => CwmpMessage::AddObject(AddObject::decode(el)?),
            "DeleteObject" => CwmpMessage::DeleteObject(DeleteObject::decode(el)?),
            "Reboot" => CwmpMessage::Reboot(Reboot::decode(el)?),
            "FactoryReset" => CwmpMessage::FactoryReset(FactoryReset::decode(el)?),
            "Download" => CwmpMessage::Download(Download::decode(el)?),
            "Upload" => CwmpMessage::Upload(Upload::decode(el)?),
            "ScheduleInform" => CwmpMessage::ScheduleInform(ScheduleInform::decode(el)?),
            "InformResponse" => CwmpMessage::InformResponse(InformResponse::decode(el)?),
            "TransferCompleteResponse" => CwmpMessage::TransferCompleteResponse,
            "AutonomousTransferCompleteResponse" => CwmpMessage::AutonomousTransferCompleteResponse,
            "DUStateChangeCompleteResponse" => CwmpMessage::DuStateChangeCompleteResponse,
            "RequestDownloadResponse" => CwmpMessage::RequestDownloadResponse,
            "GetParameterNamesResponse" => {
                CwmpMessage::GetParameterNamesResponse(GetParameterNamesResponse::decode(el)?)
            }
            "GetParameterValuesResponse" => {
                CwmpMessage::GetParameterValuesResponse(GetParameterValuesResponse::decode(el)?)
            }
            "SetParameterValuesResponse" => {
                CwmpMessage::SetParameterValuesResponse(SetParameterValuesResponse::decode(el)?)
            }
            "GetParameterAttributesResponse" => CwmpMessage::GetParameterAttributesResponse(
                GetParameterAttributesResponse::decode(el)?,
            ),
            "SetParameterAttributesResponse" => {
                CwmpMessage::SetParameterAttributesResponse(SetParameterAttributesResponse)
            }
            "AddObjectResponse" => CwmpMessage::AddObjectResponse(AddObjectResponse::decode(el)?),
            "DeleteObjectResponse" => {
                CwmpMessage::DeleteObjectResponse(DeleteObjectResponse::decode(el)?)
            }
            "RebootResponse" => CwmpMessage::RebootResponse(RebootResponse),
            "FactoryResetResponse" => CwmpMessage::FactoryResetResponse(FactoryResetResponse),
            "DownloadResponse" => CwmpMessage::DownloadResponse(DownloadResponse::decode(el)?),
            "UploadResponse" => CwmpMessage::UploadResponse(UploadResponse::decode(el)?),
            "ScheduleInformResponse" => CwmpMessage::ScheduleInformResponse(ScheduleInformResponse),
            other => return Err(DecodeError::UnknownMethod(other.chars().take(64).collect())),
        })
    }

    pub(crate) fn encode(&self, out: &mut String) {
        match self {
            CwmpMessage::Inform(m) => m.encode(out),
            CwmpMessage::TransferComplete(m) => m.encode(out),
            CwmpMessage::AutonomousTransferComplete(m) => m.encode(out),
            CwmpMessage::DuStateChangeComplete(m) => m.encode(out),
            CwmpMessage::RequestDownload(m) => m.encode(out),
            CwmpMessage::Kicked(m) => m.encode(out),
            CwmpMessage::GetRpcMethods(m) => m.encode(out),
            CwmpMessage::GetRpcMethodsResponse(m) => m.encode(out),
            CwmpMessage::Fault(m) => m.encode(out),
            CwmpMessage::GetParameterNames(m) => m.encode(out),
            CwmpMessage::GetParameterValues(m) => m.encode(out),
            CwmpMessage::SetParameterValues(m) => m.encode(out),
            CwmpMessage::GetParameterAttributes(m) => m.encode(out),
            CwmpMessage::SetParameterAttributes(m) => m.encode(out),
            CwmpMessage::AddObject(m) => m.encode(out),
            CwmpMessage::DeleteObject(m) => m.encode(out),
            CwmpMessage::Reboot(m) => m.encode(out),
            CwmpMessage::FactoryReset(m) => m.encode(out),
            CwmpMessage::Download(m) => m.encode(out),
            CwmpMessage::Upload(m) => m.encode(out),
            CwmpMessage::ScheduleInform(m) => m.encode(out),
            CwmpMessage::InformResponse(m) => m.encode(out),
            CwmpMessage::TransferCompleteResponse => {
                out.push_str("<cwmp:TransferCompleteResponse/>")
            }
            CwmpMessage::AutonomousTransferCompleteResponse => {
                out.push_str("<cwmp:AutonomousTransferCompleteResponse/>")
            }
            CwmpMessage::DuStateChangeCompleteResponse => {
                out.push_str("<cwmp:DUStateChangeCompleteResponse/>")
            }
            CwmpMessage::RequestDownloadResponse => out.push_str("<cwmp:RequestDownloadResponse/>"),
            CwmpMessage::GetParameterNamesResponse(m) => m.encode(out),
            CwmpMessage::GetParameterValuesResponse(m) => m.encode(out),
            CwmpMessage::SetParameterValuesResponse(m) => m.encode(out),
            CwmpMessage::GetParameterAttributesResponse(m) => m.encode(out),
            CwmpMessage::SetParameterAttributesResponse(m) => m.encode(out),
            CwmpMessage::AddObjectResponse(m) => m.encode(out),
            CwmpMessage::DeleteObjectResponse(m) => m.encode(out),
            CwmpMessage::RebootResponse(m) => m.encode(out),
            CwmpMessage::FactoryResetResponse(m) => m.encode(out),
            CwmpMessage::DownloadResponse(m) => m.encode(out),
            CwmpMessage::UploadResponse(m) => m.encode(out),
            CwmpMessage::ScheduleInformResponse(m) => m.encode(out),
        }
    }

    /// The RPC name as it appears on the wire, for metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            CwmpMessage::Inform(_) => "Inform",
            CwmpMessage::TransferComplete(_) => "TransferComplete",
            CwmpMessage::AutonomousTransferComplete(_) => "AutonomousTransferComplete",
            CwmpMessage::DuStateChangeComplete(_) => "DUStateChangeComplete",
            CwmpMessage::RequestDownload(_) => "RequestDownload",
            CwmpMessage::Kicked(_) => "Kicked",
            CwmpMessage::GetRpcMethods(_) => "GetRPCMethods",
            CwmpMessage::GetRpcMethodsResponse(_) => "GetRPCMethodsResponse",
            CwmpMessage::Fault(_) => "Fault",
            CwmpMessage::GetParameterNames(_) => "GetParameterNames",
            CwmpMessage::GetParameterValues(_) => "GetParameterValues",
            CwmpMessage::SetParameterValues(_) => "SetParameterValues",
            CwmpMessage::GetParameterAttributes(_) => "GetParameterAttributes",
            CwmpMessage::SetParameterAttributes(_) => "SetParameterAttributes",
            CwmpMessage::AddObject(_) => "AddObject",
            CwmpMessage::DeleteObject(_) => "DeleteObject",
            CwmpMessage::Reboot(_) => "Reboot",
            CwmpMessage::FactoryReset(_) => "FactoryReset",
            CwmpMessage::Download(_) => "Download",
            CwmpMessage::Upload(_) => "Upload",
            CwmpMessage::ScheduleInform(_) => "ScheduleInform",
            CwmpMessage::InformResponse(_) => "InformResponse",
            CwmpMessage::TransferCompleteResponse => "TransferCompleteResponse",
            CwmpMessage::AutonomousTransferCompleteResponse => "AutonomousTransferCompleteResponse",
            CwmpMessage::DuStateChangeCompleteResponse => "DUStateChangeCompleteResponse",
            CwmpMessage::RequestDownloadResponse => "RequestDownloadResponse",
            CwmpMessage::GetParameterNamesResponse(_) => "GetParameterNamesResponse",
            CwmpMessage::GetParameterValuesResponse(_) => "GetParameterValuesResponse",
            CwmpMessage::SetParameterValuesResponse(_) => "SetParameterValuesResponse",
            CwmpMessage::GetParameterAttributesResponse(_) => "GetParameterAttributesResponse",
            CwmpMessage::SetParameterAttributesResponse(_) => "SetParameterAttributesResponse",
            CwmpMessage::AddObjectResponse(_) => "AddObjectResponse",
            CwmpMessage::DeleteObjectResponse(_) => "DeleteObjectResponse",
            CwmpMessage::RebootResponse(_) => "RebootResponse",
            CwmpMessage::FactoryResetResponse(_) => "FactoryResetResponse",
            CwmpMessage::DownloadResponse(_) => "DownloadResponse",
            CwmpMessage::UploadResponse(_) => "UploadResponse",
            CwmpMessage::ScheduleInformResponse(_) => "ScheduleInformResponse",
        }
    }
}
