use super::*;

#[test]
fn mul_div_is_exact_where_a_product_overflows() {
    assert_eq!(mul_div(100, 3, 10), Some(30));
    assert_eq!(mul_div(7, 0, 10), Some(0));
    assert_eq!(mul_div(7, 5, 0), Some(0));
    // (u128::MAX / 2) × 2 / 3 does not fit as a product, but the result does.
    let a = u128::MAX / 2;
    assert_eq!(mul_div(a, 2, 3), Some(a / 3 * 2 + (a % 3) * 2 / 3));
    assert_eq!(mul_div(u128::MAX, 1, 1), Some(u128::MAX));
    assert_eq!(mul_div(u128::MAX, 10, 10), Some(u128::MAX));
}

#[test]
fn a_policy_pays_at_most_the_whole_fee() {
    let ok = FastPolicy {
        max_amount: 1,
        max_outstanding: 1,
        fee_share_bps: 10_000,
    };
    assert!(ok.validate().is_ok());
    let bad = FastPolicy {
        fee_share_bps: 10_001,
        ..ok
    };
    assert!(bad.validate().is_err());
}
