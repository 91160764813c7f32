use connpool_core::Health;

fn main() {
    // `Health` grows a variant without a breaking change: a match needs a
    // wildcard arm.
    let _ = |health: Health| match health {
        Health::Ready => 0,
        Health::NeedsRecycle => 1,
        Health::Broken => 2,
        Health::ServerChanged => 3,
        Health::ClosedByServer => 4,
    };
}
