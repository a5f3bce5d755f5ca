use super::*;
use crate::{
    ledger::Producer,
    state::{Overlay, State},
};

fn addr(i: u8) -> Address {
    Address([i; 20])
}

fn with_producer(o: &mut Overlay<'_>, a: Address) {
    let p = Producer::new(PublicKey([2; 33]), String::new());
    ledger::write(o, keys::producer(&a), &p);
}

fn total(o: &Overlay<'_>, a: Address) -> u128 {
    ledger::producer(o, &a).unwrap().unwrap().total_votes
}

#[test]
fn proxy_moves_weight_one_level() {
    let base = State::new();
    let mut o = Overlay::new(&base);
    let (p1, p2) = (addr(1), addr(2));
    with_producer(&mut o, p1);
    with_producer(&mut o, p2);
    let (voter, proxy) = (addr(10), addr(11));
    update_account(&mut o, &voter, |a| {
        a.stake = 100;
        a.votes = vec![p1];
        Ok(())
    })
    .unwrap();
    update_account(&mut o, &proxy, |a| {
        a.stake = 5;
        a.votes = vec![p2];
        Ok(())
    })
    .unwrap();
    assert_eq!((total(&o, p1), total(&o, p2)), (100, 5));

    // The voter hands its weight to the proxy: its own vote for p1 no longer counts.
    update_account(&mut o, &voter, |a| {
        a.proxy = Some(proxy);
        Ok(())
    })
    .unwrap();
    assert_eq!((total(&o, p1), total(&o, p2)), (0, 105));
    assert_eq!(ledger::account(&o, &proxy).unwrap().delegators, 1);

    // Stake changes of the voter follow it to the proxy's choices.
    update_account(&mut o, &voter, |a| {
        a.stake = 40;
        Ok(())
    })
    .unwrap();
    assert_eq!(total(&o, p2), 45);

    // The proxy changes its vote: all its weight moves.
    update_account(&mut o, &proxy, |a| {
        a.votes = vec![p1, p2];
        Ok(())
    })
    .unwrap();
    assert_eq!((total(&o, p1), total(&o, p2)), (45, 45));

    // Rescinding the proxy brings the voter's own vote back.
    update_account(&mut o, &voter, |a| {
        a.proxy = None;
        Ok(())
    })
    .unwrap();
    assert_eq!((total(&o, p1), total(&o, p2)), (45, 5));
    assert_eq!(ledger::account(&o, &proxy).unwrap().proxied_weight, 0);
}

#[test]
fn election_ranks_by_votes_then_address_and_skips_ineligible() {
    let base = State::new();
    let mut o = Overlay::new(&base);
    let params = ChainParams {
        max_producers: 2,
        min_producer_stake: 10,
        ..ChainParams::default()
    };
    let list: Vec<Address> = (1..=4).map(addr).collect();
    ledger::write(&mut o, keys::PRODUCER_LIST.to_vec(), &list);
    for (i, a) in list.iter().enumerate() {
        let mut p = Producer {
            signing_key: PublicKey([i as u8 + 2; 33]),
            url: String::new(),
            registered: true,
            slashed: false,
            total_votes: [50, 70, 70, 999][i],
            produced: 0,
            missed: 0,
            last_commit: Hash32::ZERO,
            last_block_height: 0,
        };
        if i == 3 {
            p.slashed = true; // the most voted is slashed: never elected
        }
        ledger::write(&mut o, keys::producer(a), &p);
        update_account(&mut o, a, |acct| {
            acct.stake = 10;
            Ok(())
        })
        .unwrap();
    }
    let elected: Vec<Address> = elect(&o, &params)
        .unwrap()
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(
        elected,
        vec![addr(2), addr(3)],
        "70, 70 (tie by address); 999 is slashed"
    );

    // Below minimum stake: not eligible.
    update_account(&mut o, &addr(2), |acct| {
        acct.stake = 9;
        Ok(())
    })
    .unwrap();
    let elected: Vec<Address> = elect(&o, &params)
        .unwrap()
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(elected, vec![addr(3), addr(1)]);
}
