use super::*;

#[test]
fn mul_div_is_exact_when_the_product_fits_and_bounded_when_it_does_not() {
    assert_eq!(mul_div(100, 3, 10), 30);
    assert_eq!(mul_div(7, 0, 10), 0);
    assert_eq!(mul_div(7, 5, 0), 0);
    assert_eq!(mul_div(u128::MAX, 1, 1), u128::MAX);
    // Products beyond 128 bits: no panic, no endless loop, never more than `a`, and
    // close to the exact value.
    assert_eq!(mul_div(u128::MAX, 10, 10), u128::MAX);
    let third = mul_div(u128::MAX, 1 << 70, 3 << 70);
    assert!((u128::MAX / 3 - (u128::MAX >> 60)..=u128::MAX / 3).contains(&third));
    // 2/3 of the largest amount: rounded within what the shift allows, and it ends.
    let two_thirds = mul_div(u128::MAX / 2, 2, 3);
    assert!(two_thirds >= u128::MAX / 3 - 1, "{two_thirds}");
    for (a, b, c) in [
        (u128::MAX, u128::MAX, u128::MAX),
        (1 << 100, 1 << 90, 1 << 91),
        (3, 1, u128::MAX),
    ] {
        assert!(mul_div(a, b, c) <= a);
    }
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
