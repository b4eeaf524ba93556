//! Syslog listeners (tokio): one file per listener kind.
