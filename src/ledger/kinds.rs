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
    /// Whether a transfer of this kind, naming a hold (`pending_id`) or not, resolves a pending hold. An
    /// `expire` that names none is a lot's expiry: points leaving a wallet for good.
    pub fn resolves_hold(self, pending_id: Option<i64>) -> bool {
        match self {
            TransferKind::Post | TransferKind::Void => true,
            TransferKind::Expire => pending_id.is_some(),
            _ => false,
        }
    }
}

crate::text_enum! {
    /// What an account is: a person's wallet (of points, or of cash), a region's issuance account, a
    /// partner's settlement, a sink where points end (`sink:expired`, `sink:retired`), the bank account
    /// deposited money is kept in (`cash:bank`), the market's fee income (`cash:fees`), or the side that
    /// order holds name (`market:points`, `market:cash`).
    pub enum AccountKind {
        Wallet = "wallet",
        Issuance = "issuance",
        Settlement = "settlement",
        Sink = "sink",
        Bank = "bank",
        Fees = "fees",
        Market = "market",
    }
}

crate::text_enum! {
    /// What an account holds: carbon points, or CNY in fen. A transfer moves one asset between two
    /// accounts of it.
    pub enum Asset {
        Points = "points",
        Cny = "cny",
    }
}
