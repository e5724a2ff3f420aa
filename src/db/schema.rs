//! Table definitions shared by both backends (written by hand to match `migrations/`).

diesel::table! {
    regions (code) {
        code -> Text,
        name -> Text,
        name_en -> Text,
        parent_code -> Nullable<Text>,
        level -> Text,
        macro_region -> Nullable<Text>,
        nbs_region -> Nullable<Text>,
        grid_region -> Nullable<Text>,
        population_2020 -> Nullable<BigInt>,
    }
}

diesel::table! {
    accounts (id) {
        id -> BigInt,
        kind -> Text,
        code -> Text,
        region_code -> Nullable<Text>,
        floored -> Bool,
        debits_posted -> BigInt,
        credits_posted -> BigInt,
        debits_pending -> BigInt,
        credits_pending -> BigInt,
        created_at -> Timestamp,
        derived -> Bool,
        issued_posted -> BigInt,
        asset -> Text,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        phone_hash -> Text,
        password_hash -> Text,
        display_name -> Text,
        account_type -> Text,
        region_code -> Text,
        credit_code -> Nullable<Text>,
        is_admin -> Bool,
        account_id -> BigInt,
        created_at -> Timestamp,
        phone_sealed -> Nullable<Text>,
        erased_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> BigInt,
        user_id -> BigInt,
        family_id -> Text,
        token_hash -> Text,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    role_grants (id) {
        id -> BigInt,
        user_id -> BigInt,
        role -> Text,
        region_code -> Text,
        granted_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        revoked_by -> Nullable<BigInt>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    platform_keys (name) {
        name -> Text,
        value -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        actor_user_id -> Nullable<BigInt>,
        action -> Text,
        entity -> Text,
        entity_id -> Text,
        before_json -> Nullable<Text>,
        after_json -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    grid_factors (grid_region, year) {
        grid_region -> Text,
        year -> Integer,
        g_per_kwh -> Text,
        source -> Text,
    }
}

diesel::table! {
    activity_types (code) {
        code -> Text,
        name -> Text,
        unit -> Text,
        data_schema -> Text,
        claim_window_days -> Integer,
        created_at -> Timestamp,
        travel -> Bool,
        max_speed_kmh -> Nullable<Integer>,
    }
}

diesel::table! {
    activity_type_changes (id) {
        id -> BigInt,
        activity_type -> Text,
        proposed -> Text,
        status -> Text,
        requested_by -> BigInt,
        requested_at -> Timestamp,
        approved_by -> Nullable<BigInt>,
        approved_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    methodology_versions (id) {
        id -> BigInt,
        activity_type -> Text,
        region_code -> Text,
        version -> Integer,
        status -> Text,
        effective_from -> Timestamp,
        effective_to -> Nullable<Timestamp>,
        parameters -> Text,
        formula -> Text,
        daily_cap_g -> Nullable<BigInt>,
        evidence_weights -> Text,
        citation -> Text,
        drafted_by -> Nullable<BigInt>,
        approved_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        activated_at -> Nullable<Timestamp>,
        retired_at -> Nullable<Timestamp>,
        retire_requested_by -> Nullable<BigInt>,
        retire_requested_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    region_parameter_versions (id) {
        id -> BigInt,
        region_code -> Text,
        status -> Text,
        effective_from -> Timestamp,
        parameter_values -> Text,
        citation -> Text,
        drafted_by -> Nullable<BigInt>,
        approved_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        activated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    catalog_epoch (id) {
        id -> Integer,
        epoch -> BigInt,
    }
}

diesel::table! {
    transfers (id) {
        id -> BigInt,
        kind -> Text,
        debit_account_id -> BigInt,
        credit_account_id -> BigInt,
        amount -> BigInt,
        pending_id -> Nullable<BigInt>,
        timeout_at -> Nullable<Timestamp>,
        ref_type -> Nullable<Text>,
        ref_id -> Nullable<Text>,
        memo -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    lots (id) {
        id -> BigInt,
        account_id -> BigInt,
        region_code -> Text,
        activity_type -> Nullable<Text>,
        methodology_id -> Nullable<BigInt>,
        points -> BigInt,
        reduction_g -> BigInt,
        expires_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    lot_holdings (account_id, hold_id, expires_at, lot_id) {
        account_id -> BigInt,
        hold_id -> BigInt,
        expires_at -> Timestamp,
        lot_id -> BigInt,
        points -> BigInt,
    }
}

diesel::table! {
    lot_exits (transfer_id, lot_id) {
        transfer_id -> BigInt,
        lot_id -> BigInt,
        points -> BigInt,
    }
}

diesel::table! {
    retirements (id) {
        id -> BigInt,
        serial -> Nullable<Text>,
        account_id -> BigInt,
        transfer_id -> Nullable<BigInt>,
        points -> BigInt,
        reduction_g -> BigInt,
        beneficiary -> Text,
        reason -> Text,
        period_from -> Nullable<Text>,
        period_to -> Nullable<Text>,
        retired_at -> Timestamp,
    }
}

diesel::table! {
    pending_holds (hold_id) {
        hold_id -> BigInt,
        timeout_at -> Timestamp,
    }
}

diesel::table! {
    unsealed_transfers (transfer_id) {
        transfer_id -> BigInt,
    }
}

diesel::table! {
    ledger_blocks (height) {
        height -> BigInt,
        prev_hash -> Text,
        merkle_root -> Text,
        hash -> Text,
        transfer_count -> BigInt,
        sealed_at -> Timestamp,
        signature -> Text,
    }
}

diesel::table! {
    block_transfers (transfer_id) {
        transfer_id -> BigInt,
        block_height -> BigInt,
        leaf_index -> BigInt,
    }
}

diesel::table! {
    idempotency_keys (scope, idempotency_key) {
        scope -> Text,
        idempotency_key -> Text,
        request_hash -> Text,
        status -> Integer,
        response -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    activities (id) {
        id -> BigInt,
        account_id -> BigInt,
        user_id -> BigInt,
        client_event_id -> Text,
        request_hash -> Text,
        activity_type -> Text,
        region_code -> Text,
        occurred_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
        local_day -> Text,
        evidence -> Text,
        provider_id -> Nullable<BigInt>,
        data -> Text,
        status -> Text,
        reasons -> Text,
        methodology_id -> Nullable<BigInt>,
        reduction_g -> BigInt,
        granted_g -> BigInt,
        points -> BigInt,
        breakdown -> Nullable<Text>,
        transfer_id -> Nullable<BigInt>,
        review_note -> Nullable<Text>,
        reviewed_by -> Nullable<BigInt>,
        reviewed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        region_parameters_id -> Nullable<BigInt>,
        claim_id -> Nullable<Text>,
    }
}

diesel::table! {
    daily_grants (account_id, activity_type, local_day) {
        account_id -> BigInt,
        activity_type -> Text,
        local_day -> Text,
        granted_g -> BigInt,
        last_grant_g -> BigInt,
    }
}

diesel::table! {
    annual_points (account_id, year) {
        account_id -> BigInt,
        year -> Integer,
        points -> BigInt,
        last_grant -> BigInt,
    }
}

diesel::table! {
    providers (id) {
        id -> BigInt,
        name -> Text,
        kind -> Text,
        region_codes -> Text,
        created_at -> Timestamp,
        code -> Nullable<Text>,
    }
}

diesel::table! {
    peers (id) {
        id -> BigInt,
        name -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    claims (claim_id) {
        claim_id -> Text,
        peer_id -> Nullable<BigInt>,
        claimed_at -> Timestamp,
        registered_at -> Timestamp,
    }
}

diesel::table! {
    api_keys (key_id) {
        key_id -> Text,
        owner_type -> Text,
        owner_id -> BigInt,
        secret_encrypted -> Text,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    cache_entries (key) {
        key -> Text,
        count -> BigInt,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    request_nonces (key_id, nonce) {
        key_id -> Text,
        nonce -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    partners (id) {
        id -> BigInt,
        name -> Text,
        kind -> Text,
        region_codes -> Text,
        account_id -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    offers (id) {
        id -> BigInt,
        partner_id -> BigInt,
        title -> Text,
        description -> Text,
        points_cost -> BigInt,
        value_fen -> Nullable<BigInt>,
        per_user_limit -> BigInt,
        valid_from -> Timestamp,
        valid_to -> Timestamp,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        residents_only -> Bool,
    }
}

diesel::table! {
    offer_stock (offer_id, bucket) {
        offer_id -> BigInt,
        bucket -> BigInt,
        stock -> BigInt,
    }
}

diesel::table! {
    offer_regions (offer_id, region_code) {
        offer_id -> BigInt,
        region_code -> Text,
    }
}

diesel::table! {
    redemptions (id) {
        id -> BigInt,
        offer_id -> BigInt,
        partner_id -> BigInt,
        account_id -> BigInt,
        user_id -> BigInt,
        points -> BigInt,
        value_fen -> Nullable<BigInt>,
        status -> Text,
        hold_id -> Nullable<BigInt>,
        stock_bucket -> Nullable<BigInt>,
        resolution_id -> Nullable<BigInt>,
        expires_at -> Timestamp,
        created_at -> Timestamp,
        resolved_at -> Nullable<Timestamp>,
        resolved_by -> Nullable<Text>,
    }
}

diesel::table! {
    redemption_counts (offer_id, account_id) {
        offer_id -> BigInt,
        account_id -> BigInt,
        active -> BigInt,
    }
}

diesel::table! {
    binding_codes (code_hash) {
        code_hash -> Text,
        user_id -> BigInt,
        provider_id -> BigInt,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    bindings (id) {
        id -> BigInt,
        user_id -> BigInt,
        provider_id -> BigInt,
        external_ref -> Text,
        created_at -> Timestamp,
        removed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    activity_rollups (account_id, local_day) {
        account_id -> BigInt,
        local_day -> Text,
        granted_g -> BigInt,
        accepted -> BigInt,
        verified -> BigInt,
        flagged -> BigInt,
        rejected -> BigInt,
    }
}

diesel::table! {
    partner_green_tiers (partner_id) {
        partner_id -> BigInt,
        medium_from_g -> BigInt,
        deep_above_g -> BigInt,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    consents (id) {
        id -> Text,
        user_id -> BigInt,
        partner_id -> BigInt,
        scopes -> Text,
        expires_at -> Timestamp,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    retention_marks (name) {
        name -> Text,
        last_id -> BigInt,
    }
}

diesel::table! {
    consent_accesses (id) {
        id -> BigInt,
        consent_id -> Text,
        partner_id -> BigInt,
        scope -> Text,
        at -> Timestamp,
    }
}

diesel::joinable!(offers -> partners (partner_id));
diesel::joinable!(reduction_batch_retirements -> reduction_batches (batch_id));
diesel::joinable!(bindings -> providers (provider_id));
diesel::joinable!(offer_regions -> offers (offer_id));
diesel::joinable!(redemptions -> offers (offer_id));
diesel::joinable!(users -> accounts (account_id));
diesel::joinable!(consents -> partners (partner_id));
diesel::joinable!(consent_accesses -> partners (partner_id));
diesel::joinable!(users -> regions (region_code));
diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(role_grants -> users (user_id));

diesel::table! {
    stats_days (local_day, region_code, activity_type) {
        local_day -> Text,
        region_code -> Text,
        activity_type -> Text,
        granted_g -> BigInt,
        reduction_g -> BigInt,
        points -> BigInt,
        activities -> BigInt,
    }
}

diesel::table! {
    stats_months (month, region_code, activity_type) {
        month -> Text,
        region_code -> Text,
        activity_type -> Text,
        granted_g -> BigInt,
        reduction_g -> BigInt,
        points -> BigInt,
        activities -> BigInt,
    }
}

diesel::table! {
    stats_day_accounts (local_day, region_code, activity_type, account_id) {
        local_day -> Text,
        region_code -> Text,
        activity_type -> Text,
        account_id -> BigInt,
    }
}

diesel::table! {
    stats_month_accounts (month, region_code, activity_type, account_id) {
        month -> Text,
        region_code -> Text,
        activity_type -> Text,
        account_id -> BigInt,
    }
}

diesel::table! {
    reduction_batches (id) {
        id -> BigInt,
        region_code -> Text,
        activity_types -> Nullable<Text>,
        window_from -> Timestamp,
        window_to -> Timestamp,
        status -> Text,
        activities -> BigInt,
        reduction_g -> BigInt,
        created_by -> BigInt,
        created_at -> Timestamp,
        submitted_by -> Nullable<BigInt>,
        submitted_at -> Nullable<Timestamp>,
        verified_by -> Nullable<BigInt>,
        verified_at -> Nullable<Timestamp>,
        issued_by -> Nullable<BigInt>,
        issued_at -> Nullable<Timestamp>,
        tonnes -> Nullable<BigInt>,
        serial_year -> Nullable<Integer>,
        serial_first -> Nullable<BigInt>,
        buyer -> Nullable<Text>,
        price_fen_per_tonne -> Nullable<BigInt>,
        proceeds_fen -> Nullable<BigInt>,
        bank_reference -> Nullable<Text>,
        sold_by -> Nullable<BigInt>,
        sold_at -> Nullable<Timestamp>,
        platform_fen -> Nullable<BigInt>,
        distributed_fen -> Nullable<BigInt>,
        platform_transfer_id -> Nullable<BigInt>,
        settled_by -> Nullable<BigInt>,
        settled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    reduction_incentives (batch_id, account_id) {
        batch_id -> BigInt,
        account_id -> BigInt,
        cash_account_id -> BigInt,
        granted_g -> BigInt,
        amount_fen -> BigInt,
        transfer_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    reduction_batch_retirements (batch_id) {
        batch_id -> BigInt,
        beneficiary -> Text,
        reason -> Text,
        retired_by -> BigInt,
        retired_at -> Timestamp,
    }
}

diesel::table! {
    reduction_batch_items (activity_id) {
        activity_id -> BigInt,
        batch_id -> BigInt,
        granted_g -> BigInt,
    }
}

diesel::table! {
    reduction_serials (region_code, year) {
        region_code -> Text,
        year -> Integer,
        last_n -> BigInt,
    }
}

diesel::table! {
    cash_deposits (id) {
        id -> BigInt,
        account_id -> BigInt,
        amount_fen -> BigInt,
        bank_reference -> Text,
        status -> Text,
        recorded_by -> BigInt,
        confirmed_by -> Nullable<BigInt>,
        transfer_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        confirmed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    cash_withdrawals (id) {
        id -> BigInt,
        account_id -> BigInt,
        amount_fen -> BigInt,
        status -> Text,
        hold_id -> Nullable<BigInt>,
        resolved_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        resolved_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    market_orders (id) {
        id -> BigInt,
        account_id -> BigInt,
        cash_account_id -> BigInt,
        side -> Text,
        price_fen_per_1000 -> BigInt,
        points -> BigInt,
        filled_points -> BigInt,
        status -> Text,
        time_in_force -> Text,
        hold_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    market_trades (id) {
        id -> BigInt,
        buy_order_id -> BigInt,
        sell_order_id -> BigInt,
        taker_side -> Text,
        points -> BigInt,
        price_fen_per_1000 -> BigInt,
        cash_fen -> BigInt,
        fee_fen -> BigInt,
        at -> Timestamp,
    }
}

diesel::table! {
    market_candles (period, bucket) {
        period -> Text,
        bucket -> Timestamp,
        open_price -> BigInt,
        high_price -> BigInt,
        low_price -> BigInt,
        close_price -> BigInt,
        volume_points -> BigInt,
        volume_fen -> BigInt,
        trades -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    regions,
    cash_deposits,
    cash_withdrawals,
    market_orders,
    market_trades,
    accounts,
    lots,
    lot_holdings,
    lot_exits,
    retirements,
    users,
    refresh_tokens,
    role_grants,
    platform_keys,
    audit_log,
    partners,
    offers,
    offer_regions,
    redemptions,
    transfers,
    pending_holds,
    unsealed_transfers,
    block_transfers,
    bindings,
    providers,
    consents,
    consent_accesses,
    activities,
    methodology_versions,
    reduction_batches,
    reduction_batch_items,
    reduction_batch_retirements,
    reduction_incentives
);
