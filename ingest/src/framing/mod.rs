//! Framing: turning datagrams and byte streams into syslog frames.
