#!/usr/bin/env python3
"""Writes fuzz/seeds/<target>/: deep and long inputs for each fuzz target (issue 13: a decoder
must refuse them with an error, never recurse or buffer without bound). Run from the repo root;
`crates/radar/tests/fuzz_seeds.rs` runs every seed through the targets' checks on stable."""
import os

ROOT = "fuzz/seeds"
DEEP = 5000      # nesting: far past every decoder's bound (64)
LONG = 70_000    # bytes: past the 64 KiB caps


def put(target, name, data):
    os.makedirs(f"{ROOT}/{target}", exist_ok=True)
    with open(f"{ROOT}/{target}/{name}", "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        if not n:
            return out + bytes([b])
        out += bytes([b | 0x80])


put("query_parse", "deep-parentheses", "(" * DEEP + 'serial = "A"' + ")" * DEEP)
put("query_parse", "deep-not", "NOT " * DEEP + 'serial = "A"')
put("query_parse", "unclosed-parentheses", "(" * DEEP)
put("query_parse", "long-chain", " OR ".join(['serial = "A"'] * 1100))
put("query_parse", "long-literal", 'serial = "' + "x" * LONG + '"')
put("query_parse", "long-field", "Device." + "X." * (LONG // 2) + "Y = 1")

inform = open("tests/fixtures/cwmp/huawei_Inform_1.xml", "rb").read()
at = inform.find(b"</ParameterList>")
assert at > 0
envelope = (b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
            b'xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soap:Header><cwmp:ID soap:mustUnderstand="1">1'
            b'</cwmp:ID></soap:Header><soap:Body>')
close = b"</soap:Body></soap:Envelope>"
many = b"".join(b'<ParameterValueStruct><Name>Device.X.%d.Y</Name><Value xsi:type="xsd:string">v'
                b"</Value></ParameterValueStruct>" % i for i in range(1000))
long_value = (b'<ParameterValueStruct><Name>Device.DeviceInfo.Description</Name><Value xsi:type="xsd:string">'
              + b"x" * LONG + b"</Value></ParameterValueStruct>")
for target in ["soap_decode", "acs_session"]:
    put(target, "deep-elements", envelope + b"<cwmp:Inform>" + b"<a>" * DEEP + b"</a>" * DEEP + b"</cwmp:Inform>" + close)
    put(target, "unclosed-elements", envelope + b"<a>" * DEEP)
    put(target, "long-parameter-list", inform[:at] + many + inform[at:])
    put(target, "long-value", inform[:at] + long_value + inform[at:])
    put(target, "long-attribute", envelope[:-1] + b' a="' + b"x" * LONG + b'">' + close)

nested = b"x"
for _ in range(3000):
    nested = b"\x42" + varint(len(nested)) + nested
put("usp_record", "deep-length-delimited", nested)
put("usp_record", "long-fields", b"\x0a\x031.3" + b"".join(b"\x12" + varint(1000) + b"a" * 1000 for _ in range(70)))
put("usp_record", "truncated-length", b"\x0a" + varint(1 << 40))
put("usp_session", "long-chunks", b"\x00" + (b"\xff" + b"\x0a" * 255) * 270)
put("usp_session", "deep-chunk", b"\x01\xff" + nested[:255])

put("stomp_decode", "long-header", b"\xffMESSAGE\nh:" + b"x" * LONG + b"\n\nbody\x00")
put("stomp_decode", "many-headers", b"\x40MESSAGE\n" + b"".join(b"h%d:v\n" % i for i in range(3000)) + b"\nbody\x00")
put("stomp_decode", "unterminated-body", b"\xffMESSAGE\ncontent-type:application/vnd.bbf.usp.msg\n\n" + b"x" * LONG)

stun_header = b"\x00\x01\xff\xfc\x21\x12\xa4\x42" + b"\x00" * 12
put("stun_decode", "long-datagram", stun_header + b"\x00\x20\xff\xf8" * 16000)
put("stun_decode", "many-attributes", stun_header + b"\x80\x22\x00\x00" * 16000)

put("udp_cr_decode", "long-request", b"GET http://192.0.2.1:7547?ts=1&id=1&un=u&cn=" + b"a" * LONG + b"&sig=00 HTTP/1.1\r\n\r\n")
put("udp_cr_decode", "many-params", b"GET http://192.0.2.1:7547?" + b"&".join(b"p%d=v" % i for i in range(8000)) + b" HTTP/1.1\r\n\r\n")

stream = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
          b"xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='1' version='1.0'>")
put("xmpp_stream", "deep-stanza", b"\xff" + stream + b"<iq>" * DEEP + b"</iq>" * DEEP)
put("xmpp_stream", "long-attribute", b"\x07" + stream + b"<iq a='" + b"x" * LONG + b"'/>")
put("xmpp_stream", "many-stanzas", b"\xff" + stream + b"<presence/>" * 6000)
