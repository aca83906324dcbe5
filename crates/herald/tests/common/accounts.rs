//! The account `herald sandbox` accepts, by default, for each example's provider: the credential values
//! to store and the permission sets that let a user's flows use them. A test that only needs "the example,
//! working against the sandbox" takes them from here (`Setup::sandbox_account`); a new example gets its
//! line in `sandbox_account` and every such test can start it.

use herald_providers::twilio::emulator::{DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN};
use herald_providers::vonage::emulator::{DEFAULT_API_KEY, DEFAULT_API_SECRET};

/// (external credential, principal, parameter) and the value to store.
pub type CredentialValue = ([&'static str; 3], &'static str);

pub struct SandboxAccount {
    pub credentials: &'static [CredentialValue],
    /// The API user's permission sets: records API access and the grant for the credential.
    pub permission_sets: &'static [&'static str],
}

const KIXIE: SandboxAccount = SandboxAccount {
    // `herald sandbox --kixie-businessid/--kixie-apikey` defaults.
    credentials: &[
        (["Kixie_API_Auth", "Kixie_Principal", "businessid"], "sandbox-business"),
        (["Kixie_API_Auth", "Kixie_Principal", "apikey"], "sandbox-apikey"),
    ],
    permission_sets: &["Herald_API_User", "Kixie_Integration_User"],
};

const EIGHT_BY_EIGHT: SandboxAccount = SandboxAccount {
    credentials: &[(
        ["X8x8_CPaaS_Authentication", "X8x8_API_Key_Principal", "Authorization"],
        "Bearer sandbox-8x8-key",
    )],
    permission_sets: &["Herald_API_User", "CPaaS_API_Access"],
};

const TWILIO: SandboxAccount = SandboxAccount {
    credentials: &[
        (["Twilio_Auth", "Twilio_Principal", "username"], DEFAULT_ACCOUNT_SID),
        (["Twilio_Auth", "Twilio_Principal", "password"], DEFAULT_AUTH_TOKEN),
    ],
    permission_sets: &["Herald_API_User", "Twilio_Integration_User"],
};

const VONAGE: SandboxAccount = SandboxAccount {
    credentials: &[
        (["Vonage_Auth", "Vonage_Principal", "api_key"], DEFAULT_API_KEY),
        (["Vonage_Auth", "Vonage_Principal", "api_secret"], DEFAULT_API_SECRET),
    ],
    permission_sets: &["Herald_API_User", "Vonage_Integration_User"],
};

/// The sandbox's default account for the provider of `examples/NAME`.
pub fn sandbox_account(example: &str) -> &'static SandboxAccount {
    match example {
        "kixie-welcome-sms" => &KIXIE,
        "8x8-sms" | "8x8-sms-official" | "8x8-whatsapp-otp" | "8x8-bulk" => &EIGHT_BY_EIGHT,
        "twilio-sms" => &TWILIO,
        "vonage-sms" => &VONAGE,
        _ => panic!("no sandbox account for examples/{example}: add one in tests/common/accounts.rs"),
    }
}
