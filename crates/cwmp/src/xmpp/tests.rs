use super::*;

const SERVER_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0' xml:lang='en'>";

fn config() -> ClientConfig {
    ClientConfig {
        local: "radar".into(),
        domain: "localhost".into(),
        password: "secret".into(),
        resource: "acs".into(),
        tls_available: false,
        allow_plaintext_auth: true,
    }
}

fn sent(client: &mut XmppClient) -> String {
    String::from_utf8(client.take_transmit()).unwrap()
}

/// Drives a client to Ready against a server that offers PLAIN and optional STARTTLS.
fn ready_client() -> XmppClient {
    let mut c = XmppClient::new(config());
    assert!(sent(&mut c).contains("to='localhost'"));
    c.feed(SERVER_HEADER.as_bytes()).unwrap();
    c.feed(b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>").unwrap();
    let auth = sent(&mut c);
    // base64("\0radar\0secret")
    assert!(
        auth.contains("mechanism='PLAIN'>AHJhZGFyAHNlY3JldA==</auth>"),
        "{auth}"
    );
    c.feed(b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
        .unwrap();
    assert!(
        sent(&mut c).contains("<stream:stream"),
        "stream restarts after SASL"
    );
    c.feed(SERVER_HEADER.as_bytes()).unwrap();
    c.feed(b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>").unwrap();
    assert!(sent(&mut c).contains("<resource>acs</resource>"));
    c.feed(b"<iq type='result' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>radar@localhost/acs-42</jid></bind></iq>").unwrap();
    assert_eq!(
        c.poll_event(),
        Some(Event::Ready {
            jid: "radar@localhost/acs-42".into()
        })
    );
    assert_eq!(sent(&mut c), "<presence/>");
    c
}

#[test]
fn authenticates_binds_and_exchanges_a_connection_request() {
    let mut acs = ready_client();
    let id = acs.send_iq(
        "cpe@localhost/cwmp",
        IqType::Get,
        &connection_request::payload("u<1>", "p&2"),
    );
    let wire = sent(&mut acs);
    assert!(
        wire.contains("from=\"radar@localhost/acs-42\" to=\"cpe@localhost/cwmp\""),
        "{wire}"
    );
    assert!(wire.contains("<username>u&lt;1&gt;</username><password>p&amp;2</password>"));

    // The CPE side receives the same bytes as a request and checks the credentials.
    let mut cpe = ready_client();
    cpe.feed(
        wire.replace("<iq ", "<iq xmlns='jabber:client' ")
            .as_bytes(),
    )
    .unwrap();
    let Some(Event::Iq(request)) = cpe.poll_event() else {
        panic!("an iq for the cpe")
    };
    assert_eq!(request.kind, IqType::Get);
    assert_eq!(
        connection_request::parse(request.payload.as_ref().unwrap()),
        Some(("u<1>".into(), "p&2".into()))
    );
    cpe.reply_error(&request, "auth", "not-authorized");
    let answer = sent(&mut cpe);
    acs.feed(
        answer
            .replace("to=", "from=\"cpe@localhost/cwmp\" to=")
            .as_bytes(),
    )
    .unwrap();
    let Some(Event::Iq(result)) = acs.poll_event() else {
        panic!("the answer")
    };
    assert_eq!(result.id, id);
    assert_eq!(result.kind, IqType::Error);
    assert_eq!(result.error_condition.as_deref(), Some("not-authorized"));
}

#[test]
fn answers_server_pings_itself() {
    let mut c = ready_client();
    c.feed(b"<iq type='get' id='p1' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .unwrap();
    assert_eq!(c.poll_event(), None);
    assert!(sent(&mut c).contains("type=\"result\" id=\"p1\""));
}

#[test]
fn refuses_what_it_must() {
    let mut c = XmppClient::new(ClientConfig {
        allow_plaintext_auth: false,
        ..config()
    });
    c.feed(SERVER_HEADER.as_bytes()).unwrap();
    assert_eq!(
        c.feed(b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"),
        Err(XmppError::PlaintextAuthRefused)
    );
    let mut c = XmppClient::new(config());
    c.feed(SERVER_HEADER.as_bytes()).unwrap();
    assert_eq!(
        c.feed(b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"),
        Err(XmppError::TlsRequired)
    );
    let mut c = XmppClient::new(config());
    c.feed(SERVER_HEADER.as_bytes()).unwrap();
    c.feed(b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>").unwrap();
    assert_eq!(
        c.feed(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/><text>bad</text></failure>"),
        Err(XmppError::AuthFailed("not-authorized".into()))
    );
    let mut c = ready_client();
    assert_eq!(
        c.feed(
            b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
        ),
        Err(XmppError::StreamError("conflict".into()))
    );
    assert_eq!(c.feed(b" "), Err(XmppError::StreamClosed));
}

#[test]
fn starttls_restarts_the_stream_when_the_driver_can() {
    let mut c = XmppClient::new(ClientConfig {
        tls_available: true,
        allow_plaintext_auth: false,
        ..config()
    });
    sent(&mut c);
    c.feed(SERVER_HEADER.as_bytes()).unwrap();
    c.feed(b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>").unwrap();
    assert!(sent(&mut c).contains("<starttls"));
    c.feed(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        .unwrap();
    assert_eq!(c.poll_event(), Some(Event::StartTls));
    c.tls_established();
    assert!(sent(&mut c).contains("<stream:stream"));
    c.feed(SERVER_HEADER.as_bytes()).unwrap();
    c.feed(b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>").unwrap();
    assert!(
        sent(&mut c).contains("mechanism='PLAIN'"),
        "PLAIN is fine inside TLS"
    );
}
