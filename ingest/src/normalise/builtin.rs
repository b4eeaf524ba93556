//! The built-in patterns: `(name, app, template)`. Within one app, earlier patterns win, so the
//! specific form comes before the general one (`invalid user` before a bare user).
//!
//! Cisco patterns are scoped to the message tag (`%ASA-4-106023`), which the RFC 3164 parser
//! takes as the app; the normaliser also finds such a tag inside the message (relayed lines).

pub(crate) const BUILTIN_PATTERNS: &[(&str, Option<&str>, &str)] = &[
    // ---- OpenSSH ----
    (
        "sshd_failed_invalid_user",
        Some("sshd"),
        "Failed %{auth_method:word} for invalid user %{user:word} from %{src_ip:ip} port %{src_port:int}",
    ),
    (
        "sshd_failed",
        Some("sshd"),
        "Failed %{auth_method:word} for %{user:word} from %{src_ip:ip} port %{src_port:int}",
    ),
    (
        "sshd_accepted",
        Some("sshd"),
        "Accepted %{auth_method:word} for %{user:word} from %{src_ip:ip} port %{src_port:int}",
    ),
    (
        "sshd_invalid_user",
        Some("sshd"),
        "Invalid user %{user:word} from %{src_ip:ip} port %{src_port:int}",
    ),
    (
        "sshd_invalid_user_no_port",
        Some("sshd"),
        "Invalid user %{user:word} from %{src_ip:ip}",
    ),
    (
        "sshd_disconnected_invalid_user",
        Some("sshd"),
        "Disconnected from invalid user %{user:word} %{src_ip:ip} port %{src_port:int}",
    ),
    (
        "sshd_disconnected_authenticating_user",
        Some("sshd"),
        "Disconnected from authenticating user %{user:word} %{src_ip:ip} port %{src_port:int}",
    ),
    (
        "sshd_disconnected_user",
        Some("sshd"),
        "Disconnected from user %{user:word} %{src_ip:ip} port %{src_port:int}",
    ),
    (
        "sshd_disconnected",
        Some("sshd"),
        "Disconnected from %{src_ip:ip} port %{src_port:int}",
    ),
    (
        "sshd_received_disconnect",
        Some("sshd"),
        "Received disconnect from %{src_ip:ip} port %{src_port:int}:%{reason}",
    ),
    (
        "sshd_connection_closed_invalid_user",
        Some("sshd"),
        "Connection closed by invalid user %{user:word} %{src_ip:ip} port %{src_port:int}",
    ),
    (
        "sshd_connection_closed_authenticating_user",
        Some("sshd"),
        "Connection closed by authenticating user %{user:word} %{src_ip:ip} port %{src_port:int}",
    ),
    (
        "sshd_connection_closed",
        Some("sshd"),
        "Connection closed by %{src_ip:ip} port %{src_port:int}",
    ),
    (
        "sshd_connection_reset",
        Some("sshd"),
        "Connection reset by %{src_ip:ip} port %{src_port:int}",
    ),
    (
        "sshd_max_auth_invalid_user",
        Some("sshd"),
        "error: maximum authentication attempts exceeded for invalid user %{user:word} from %{src_ip:ip} port %{src_port:int}",
    ),
    (
        "sshd_max_auth",
        Some("sshd"),
        "error: maximum authentication attempts exceeded for %{user:word} from %{src_ip:ip} port %{src_port:int}",
    ),
    (
        "sshd_no_identification",
        Some("sshd"),
        "Did not receive identification string from %{src_ip:ip} port %{src_port:int}",
    ),
    (
        "sshd_pam_more_failures",
        Some("sshd"),
        "PAM %{attempts:int} more authentication failures; %{:kv}",
    ),
    (
        "junos_sshd_login_failed",
        Some("sshd"),
        "SSHD_LOGIN_FAILED: Login failed for user '%{user}' from host '%{src_ip:ip}'",
    ),
    // ---- sudo ----
    (
        "sudo_incorrect_password",
        Some("sudo"),
        "%{user:word} : %{attempts:int} incorrect password attempt%{_} ; TTY=%{tty} ; PWD=%{pwd} ; USER=%{target_user} ; COMMAND=%{command}",
    ),
    (
        "sudo_command",
        Some("sudo"),
        "%{user:word} : TTY=%{tty} ; PWD=%{pwd} ; USER=%{target_user} ; COMMAND=%{command}",
    ),
    (
        "sudo_refused",
        Some("sudo"),
        "%{user:word} : %{reason} ; TTY=%{tty} ; PWD=%{pwd} ; USER=%{target_user} ; COMMAND=%{command}",
    ),
    // ---- su ----
    (
        "su_failed",
        Some("su"),
        "FAILED su for %{target_user:word} by %{user:word}",
    ),
    (
        "su_success",
        Some("su"),
        "Successful su for %{target_user:word} by %{user:word}",
    ),
    (
        "su_session",
        Some("su"),
        "(to %{target_user:word}) %{user:word} on %{tty:word}",
    ),
    (
        "su_failed_short",
        Some("su"),
        "- %{tty:word} %{user:word}:%{target_user:word}",
    ),
    (
        "su_success_short",
        Some("su"),
        "+ %{tty:word} %{user:word}:%{target_user:word}",
    ),
    // ---- PAM (any program) ----
    (
        "pam_auth_failure",
        None,
        "pam_unix(%{pam_service}:%{pam_type}): authentication failure; %{:kv}",
    ),
    (
        "pam_session_opened",
        None,
        "pam_unix(%{pam_service}:session): session opened for user %{user:word}(uid=%{uid:int}) by %{_}",
    ),
    (
        "pam_session_opened_old",
        None,
        "pam_unix(%{pam_service}:session): session opened for user %{user:word} by %{_}",
    ),
    (
        "pam_session_closed",
        None,
        "pam_unix(%{pam_service}:session): session closed for user %{user:word}",
    ),
    (
        "pam_password_changed",
        None,
        "pam_unix(%{pam_service}:chauthtok): password changed for %{user:word}",
    ),
    (
        "pam_user_unknown",
        None,
        "pam_unix(%{pam_service}:auth): check pass; user unknown",
    ),
    // ---- accounts ----
    (
        "useradd_new_user_from",
        Some("useradd"),
        "new user: name=%{user:word}, UID=%{uid:int}, GID=%{gid:int}, home=%{home}, shell=%{shell}, from=%{tty}",
    ),
    (
        "useradd_new_user",
        Some("useradd"),
        "new user: name=%{user:word}, UID=%{uid:int}, GID=%{gid:int}, home=%{home}, shell=%{shell}",
    ),
    (
        "useradd_new_group",
        Some("useradd"),
        "new group: name=%{group:word}, GID=%{gid:int}",
    ),
    (
        "groupadd_new_group",
        Some("groupadd"),
        "new group: name=%{group:word}, GID=%{gid:int}",
    ),
    (
        "groupadd_group_added",
        Some("groupadd"),
        "group added to %{_}: name=%{group:word}, GID=%{gid:int}",
    ),
    (
        "usermod_add_to_group",
        Some("usermod"),
        "add '%{user}' to group '%{group}'",
    ),
    (
        "usermod_add_to_shadow_group",
        Some("usermod"),
        "add '%{user}' to shadow group '%{group}'",
    ),
    (
        "gpasswd_add_to_group",
        Some("gpasswd"),
        "user %{user:word} added by %{_} to group %{group:word}",
    ),
    (
        "userdel_delete_user",
        Some("userdel"),
        "delete user '%{user}'",
    ),
    (
        "passwd_changed",
        Some("passwd"),
        "password for '%{user}' changed by '%{_}'",
    ),
    // ---- systemd ----
    (
        "systemd_unit_failed_result",
        Some("systemd"),
        "%{unit:word}: Failed with result '%{result}'",
    ),
    (
        "systemd_unit_main_exited",
        Some("systemd"),
        "%{unit:word}: Main process exited, code=%{exit_code}, status=%{status:word}",
    ),
    (
        "systemd_unit_restart",
        Some("systemd"),
        "%{unit:word}: Scheduled restart job, restart counter is at %{restart_count:int}",
    ),
    (
        "systemd_unit_deactivated",
        Some("systemd"),
        "%{unit:word}: Deactivated successfully%{status=stopped}",
    ),
    (
        "systemd_unit_succeeded",
        Some("systemd"),
        "%{unit:word}: Succeeded%{status=stopped}",
    ),
    (
        "systemd_started_unit",
        Some("systemd"),
        "Started %{unit:word} - %{description}%{status=started}",
    ),
    (
        "systemd_started",
        Some("systemd"),
        "Started %{description}%{status=started}",
    ),
    (
        "systemd_stopped_unit",
        Some("systemd"),
        "Stopped %{unit:word} - %{description}%{status=stopped}",
    ),
    (
        "systemd_stopped",
        Some("systemd"),
        "Stopped %{description}%{status=stopped}",
    ),
    (
        "systemd_failed_to_start_unit",
        Some("systemd"),
        "Failed to start %{unit:word} - %{description}%{status=failed}",
    ),
    (
        "systemd_failed_to_start",
        Some("systemd"),
        "Failed to start %{description}%{status=failed}",
    ),
    // ---- kernel (an uptime prefix `[  12.345678] ` is skipped first) ----
    (
        "ufw",
        Some("kernel"),
        "[UFW %{action}] IN=%{interface} %{:kv}",
    ),
    ("iptables", Some("kernel"), "%{_}IN=%{interface} %{:kv}"),
    (
        "kernel_oom_killed",
        Some("kernel"),
        "Out of memory: Kill%{_} process %{pid:int} (%{process})",
    ),
    (
        "kernel_segfault",
        Some("kernel"),
        "%{process}[%{pid:int}]: segfault at %{fault_address:word}",
    ),
    (
        "kernel_io_error",
        Some("kernel"),
        "%{_}I/O error, dev %{device}, sector %{sector:int}",
    ),
    (
        "kernel_ext4_error",
        Some("kernel"),
        "EXT4-fs error (device %{device}): %{reason}",
    ),
    (
        "kernel_panic",
        Some("kernel"),
        "Kernel panic - not syncing: %{reason}",
    ),
    (
        "mdadm_event",
        Some("mdadm"),
        "%{md_event:word} event detected on md device %{device:word}",
    ),
    // ---- pfSense / OPNsense filterlog (CSV) ----
    (
        "filterlog_ipv4_ports",
        Some("filterlog"),
        "%{rule_number:int},%{_},%{_},%{tracker},%{interface},%{reason},%{action},%{direction},4,%{_},%{_},%{ttl:int},%{_},%{_},%{_},%{_},%{protocol},%{_},%{src_ip:ip},%{dst_ip:ip},%{src_port:int},%{dst_port:int}",
    ),
    (
        "filterlog_ipv6_ports",
        Some("filterlog"),
        "%{rule_number:int},%{_},%{_},%{tracker},%{interface},%{reason},%{action},%{direction},6,%{_},%{_},%{_},%{protocol},%{_},%{_},%{src_ip:ip},%{dst_ip:ip},%{src_port:int},%{dst_port:int}",
    ),
    (
        "filterlog_ipv4",
        Some("filterlog"),
        "%{rule_number:int},%{_},%{_},%{tracker},%{interface},%{reason},%{action},%{direction},4,%{_},%{_},%{ttl:int},%{_},%{_},%{_},%{_},%{protocol},%{_},%{src_ip:ip},%{dst_ip:ip}",
    ),
    (
        "filterlog_ipv6",
        Some("filterlog"),
        "%{rule_number:int},%{_},%{_},%{tracker},%{interface},%{reason},%{action},%{direction},6,%{_},%{_},%{_},%{protocol},%{_},%{_},%{src_ip:ip},%{dst_ip:ip}",
    ),
    // ---- Cisco ASA ----
    (
        "asa_106023",
        Some("%ASA-4-106023"),
        "%{action} %{protocol} src %{src_interface}:%{src_ip:ip}/%{src_port:int} dst %{dst_interface}:%{dst_ip:ip}/%{dst_port:int} by access-group \"%{acl}\"",
    ),
    (
        "asa_106023_icmp",
        Some("%ASA-4-106023"),
        "%{action} %{protocol} src %{src_interface}:%{src_ip:ip} dst %{dst_interface}:%{dst_ip:ip} (type %{icmp_type:int}, code %{icmp_code:int}) by access-group \"%{acl}\"",
    ),
    (
        "asa_106100",
        Some("%ASA-6-106100"),
        "access-list %{acl} %{action} %{protocol} %{src_interface}/%{src_ip:ip}(%{src_port:int}) -> %{dst_interface}/%{dst_ip:ip}(%{dst_port:int}) hit-cnt %{hit_count:int}",
    ),
    (
        "asa_106100_warning",
        Some("%ASA-4-106100"),
        "access-list %{acl} %{action} %{protocol} %{src_interface}/%{src_ip:ip}(%{src_port:int}) -> %{dst_interface}/%{dst_ip:ip}(%{dst_port:int}) hit-cnt %{hit_count:int}",
    ),
    (
        "asa_106001",
        Some("%ASA-2-106001"),
        "%{direction} %{protocol} connection denied from %{src_ip:ip}/%{src_port:int} to %{dst_ip:ip}/%{dst_port:int} flags %{tcp_flags} on interface %{interface:word}%{action=deny}",
    ),
    (
        "asa_106015",
        Some("%ASA-6-106015"),
        "%{action} %{protocol} (no connection) from %{src_ip:ip}/%{src_port:int} to %{dst_ip:ip}/%{dst_port:int} flags %{tcp_flags} on interface %{interface:word}",
    ),
    (
        "asa_710003",
        Some("%ASA-3-710003"),
        "%{protocol} access denied by ACL from %{src_ip:ip}/%{src_port:int} to %{dst_interface}:%{dst_ip:ip}/%{dst_port:int}%{action=deny}",
    ),
    (
        "asa_302013",
        Some("%ASA-6-302013"),
        "Built %{direction} %{protocol} connection %{connection_id:int} for %{src_interface}:%{src_ip:ip}/%{src_port:int} (%{_}) to %{dst_interface}:%{dst_ip:ip}/%{dst_port:int}%{action=built}",
    ),
    (
        "asa_302015",
        Some("%ASA-6-302015"),
        "Built %{direction} %{protocol} connection %{connection_id:int} for %{src_interface}:%{src_ip:ip}/%{src_port:int} (%{_}) to %{dst_interface}:%{dst_ip:ip}/%{dst_port:int}%{action=built}",
    ),
    (
        "asa_302014",
        Some("%ASA-6-302014"),
        "Teardown %{protocol} connection %{connection_id:int} for %{src_interface}:%{src_ip:ip}/%{src_port:int} to %{dst_interface}:%{dst_ip:ip}/%{dst_port:int}%{action=teardown}",
    ),
    (
        "asa_113015",
        Some("%ASA-6-113015"),
        "AAA user authentication Rejected : reason = %{reason} : server = %{server:ip} : user = %{user} : user IP = %{src_ip:ip}%{action=reject}",
    ),
    // ---- Cisco IOS ----
    (
        "ios_link_updown",
        Some("%LINK-3-UPDOWN"),
        "Interface %{interface}, changed state to %{status}",
    ),
    (
        "ios_link_changed",
        Some("%LINK-5-CHANGED"),
        "Interface %{interface}, changed state to %{status}",
    ),
    (
        "ios_lineproto_updown",
        Some("%LINEPROTO-5-UPDOWN"),
        "Line protocol on Interface %{interface}, changed state to %{status}",
    ),
    (
        "ios_ipaccesslogp",
        Some("%SEC-6-IPACCESSLOGP"),
        "list %{acl} %{action} %{protocol} %{src_ip:ip}(%{src_port:int}) -> %{dst_ip:ip}(%{dst_port:int}), %{packets:int} packet",
    ),
    (
        "ios_ipaccesslogp_interface",
        Some("%SEC-6-IPACCESSLOGP"),
        "list %{acl} %{action} %{protocol} %{src_ip:ip}(%{src_port:int}) (%{interface}) -> %{dst_ip:ip}(%{dst_port:int}), %{packets:int} packet",
    ),
    (
        "ios_ipaccesslogdp",
        Some("%SEC-6-IPACCESSLOGDP"),
        "list %{acl} %{action} %{protocol} %{src_ip:ip} -> %{dst_ip:ip} (%{icmp_type:int}/%{icmp_code:int}), %{packets:int} packet",
    ),
    (
        "ios_ipaccesslogs",
        Some("%SEC-6-IPACCESSLOGS"),
        "list %{acl} %{action} %{src_ip:ip} %{packets:int} packet",
    ),
    (
        "ios_bgp_adjchange",
        Some("%BGP-5-ADJCHANGE"),
        "neighbor %{neighbor_ip:ip} %{status:word}",
    ),
    (
        "ios_ospf_adjchg",
        Some("%OSPF-5-ADJCHG"),
        "Process %{ospf_process:int}, Nbr %{neighbor_ip:ip} on %{interface} from %{old_state} to %{status}, %{reason}",
    ),
    (
        "ios_config",
        Some("%SYS-5-CONFIG_I"),
        "Configured from %{_} by %{user:word}",
    ),
    (
        "ios_login_failed",
        Some("%SEC_LOGIN-4-LOGIN_FAILED"),
        "Login failed [user: %{user}] [Source: %{src_ip:ip}] [localport: %{dst_port:int}] [Reason: %{reason}]",
    ),
    (
        "ios_login_success",
        Some("%SEC_LOGIN-5-LOGIN_SUCCESS"),
        "Login Success [user: %{user}] [Source: %{src_ip:ip}] [localport: %{dst_port:int}]",
    ),
    // ---- Juniper Junos ----
    (
        "junos_flow_deny",
        Some("RT_FLOW"),
        "RT_FLOW_SESSION_DENY: session denied %{src_ip:ip}/%{src_port:int}->%{dst_ip:ip}/%{dst_port:int}%{action=deny}",
    ),
    (
        "junos_flow_create",
        Some("RT_FLOW"),
        "RT_FLOW_SESSION_CREATE: session created %{src_ip:ip}/%{src_port:int}->%{dst_ip:ip}/%{dst_port:int}%{action=permit}",
    ),
    (
        "junos_flow_close",
        Some("RT_FLOW"),
        "RT_FLOW_SESSION_CLOSE: session closed %{reason}: %{src_ip:ip}/%{src_port:int}->%{dst_ip:ip}/%{dst_port:int}",
    ),
    (
        "junos_link_down",
        Some("mib2d"),
        "SNMP_TRAP_LINK_DOWN: ifIndex %{if_index:int}, ifAdminStatus %{admin_status}(%{_}), ifOperStatus %{status}(%{_}), ifName %{interface:word}",
    ),
    (
        "junos_link_up",
        Some("mib2d"),
        "SNMP_TRAP_LINK_UP: ifIndex %{if_index:int}, ifAdminStatus %{admin_status}(%{_}), ifOperStatus %{status}(%{_}), ifName %{interface:word}",
    ),
    (
        "junos_bgp_state_changed",
        Some("rpd"),
        "RPD_BGP_NEIGHBOR_STATE_CHANGED: BGP peer %{neighbor_ip:ip} (%{_}) changed state from %{old_state} to %{status:word}",
    ),
    (
        "junos_bgp_io_error",
        Some("rpd"),
        "BGP_IO_ERROR_CLOSE_SESSION: BGP peer %{neighbor_ip:ip} (%{_}): %{reason}",
    ),
    // ---- web servers (any program): combined, then common log format ----
    (
        "access_log_combined",
        None,
        "%{src_ip:ip} %{_} %{user} [%{time_local}] \"%{method:word} %{path} %{http_version}\" %{status:int} %{bytes:int} \"%{referrer}\" \"%{user_agent}\"",
    ),
    (
        "access_log_common",
        None,
        "%{src_ip:ip} %{_} %{user} [%{time_local}] \"%{method:word} %{path} %{http_version}\" %{status:int} %{bytes:int}",
    ),
];
