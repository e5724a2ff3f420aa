//! The ledger's states: what a transfer does and what an account is, stored as text.

crate::text_enum! {
    /// What a transfer does. A hold reserves points; a post, void or expiry resolves it.
    pub enum TransferKind {
        Issue = "issue",
        Transfer = "transfer",
        Hold = "hold",
        Post = "post",
        Void = "void",
        Expire = "expire",
        Reverse = "reverse",
        Retire = "retire",
    }
}

impl TransferKind {
    /// Whether this kind resolves a pending hold.
    pub fn resolves_hold(self) -> bool {
        matches!(
            self,
            TransferKind::Post | TransferKind::Void | TransferKind::Expire
        )
    }
}

crate::text_enum! {
    /// What an account is: a person's wallet, a region's issuance account, or a partner's settlement.
    pub enum AccountKind {
        Wallet = "wallet",
        Issuance = "issuance",
        Settlement = "settlement",
    }
}
