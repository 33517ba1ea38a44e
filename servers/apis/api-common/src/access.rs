//! Who may call an operation: the OAuth 2.0 scopes of the bearer tokens
//! clients send, and which of them an operation accepts.

/// The scopes an access token can carry, in its space-separated `scope` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Read one's own orders.
    OrdersRead,
    /// Create, change and delete one's own orders.
    OrdersWrite,
    /// Read one's own payments.
    PaymentsRead,
    /// Pay one's own orders.
    PaymentsWrite,
    /// Record any payment's outcome, and read any payment: the payment
    /// provider's connector or the back office.
    PaymentsSettle,
    /// Read everything.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::OrdersRead,
        Scope::OrdersWrite,
        Scope::PaymentsRead,
        Scope::PaymentsWrite,
        Scope::PaymentsSettle,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::OrdersRead => "orders:read",
            Scope::OrdersWrite => "orders:write",
            Scope::PaymentsRead => "payments:read",
            Scope::PaymentsWrite => "payments:write",
            Scope::PaymentsSettle => "payments:settle",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == text)
    }

    /// What the scope allows, for the contract's reader.
    pub fn description(self) -> &'static str {
        match self {
            Scope::OrdersRead => "Read one's own orders.",
            Scope::OrdersWrite => "Create, change and delete one's own orders.",
            Scope::PaymentsRead => "Read one's own payments.",
            Scope::PaymentsWrite => "Pay one's own orders.",
            Scope::PaymentsSettle => {
                "Record any payment's outcome and read any payment (the payment provider's \
                 connector, the back office)."
            }
            Scope::Admin => "Read every order and payment.",
        }
    }
}

/// What an operation asks of its caller.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    /// The operation's id.
    pub operation: &'static str,
    /// The caller's token must carry one of these.
    pub any_of: &'static [Scope],
    /// A caller with one of these acts on every customer's resources;
    /// every other caller only on its own (others' answer 404).
    pub sees_all: &'static [Scope],
}

/// The entry for `operation` in `table`: `None` means the operation is not
/// open to bearer tokens (the internal ones are signed instead).
pub fn access_of(table: &[Access], operation: &str) -> Option<Access> {
    table.iter().find(|a| a.operation == operation).copied()
}
