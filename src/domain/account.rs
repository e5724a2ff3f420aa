//! The kinds of account a person can register.

crate::text_enum! {
    /// A person's own account or a business's; a business must give its credit code.
    pub enum AccountType {
        Individual = "individual",
        Business = "business",
    }
}
