//! RFC 6962 / RFC 9162 Merkle tree hashing with SHA-256.
//!
//! Leaves and interior nodes are hashed with distinct one-byte prefixes
//! (0x00 / 0x01) so that a leaf can never be passed off as an interior node
//! (second-preimage resistance). Trees of any size are supported: unlike a
//! "duplicate the last node" scheme, RFC 6962 splits at the largest power of
//! two, so no two different leaf lists share a root.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

/// `SHA256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(data);
    h.finalize().into()
}

/// `SHA256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Root of the empty tree: `SHA256("")` (RFC 6962 §2.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Largest power of two strictly less than `n`; requires `n >= 2`.
fn split_point(n: usize) -> usize {
    debug_assert!(n >= 2);
    // For n >= 2, n - 1 >= 1, so the shift amount is in 0..usize::BITS.
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// `MTH(D[n])` (RFC 6962 §2.1) over already-hashed leaves.
///
/// Recursive on the RFC's own split, so it is easy to check against the
/// text; it does n - 1 node hashes and recurses only O(log n) deep because
/// the left part is always a perfect tree of at least half the leaves.
pub fn root(leaf_hashes: &[Hash]) -> Hash {
    match leaf_hashes {
        [] => empty_root(),
        [only] => *only,
        _ => {
            let (left, right) = leaf_hashes.split_at(split_point(leaf_hashes.len()));
            node_hash(&root(left), &root(right))
        }
    }
}

/// `PATH(m, D[n])` (RFC 6962 §2.1.1): the audit path for leaf `index`,
/// ordered from the leaf's sibling up to the child of the root.
///
/// `None` when `index >= leaf_hashes.len()` (which includes the empty tree).
/// Costs O(n) hashing, since every sibling subtree root is recomputed.
pub fn inclusion_proof(leaf_hashes: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaf_hashes.len() {
        return None;
    }
    // Walk down from the root, collecting siblings top-down, then reverse so
    // the proof is leaf-first as the RFC's recursive definition yields it.
    let mut path = Vec::new();
    let mut subtree = leaf_hashes;
    let mut m = index;
    while subtree.len() > 1 {
        let k = split_point(subtree.len());
        let (left, right) = subtree.split_at(k);
        if m < k {
            path.push(root(right));
            subtree = left;
        } else {
            path.push(root(left));
            subtree = right;
            m -= k;
        }
    }
    path.reverse();
    Some(path)
}

/// Verifies an inclusion proof with the algorithm of RFC 9162 §2.1.3.2.
///
/// Returns `false` (never panics) for any malformed input: an index outside
/// the tree, or a proof that is too short or too long for `(index,
/// tree_size)`. The comparison with `root` is not constant-time: roots and
/// proofs are public data, so timing reveals nothing secret.
pub fn verify_inclusion(leaf: &Hash, index: u64, tree_size: u64, proof: &[Hash], root: &Hash) -> bool {
    // Step 1.
    if index >= tree_size {
        return false;
    }
    // Step 2. `tree_size >= 1` here, so this cannot underflow.
    let mut fnode = index;
    let mut snode = tree_size - 1;
    // Step 3.
    let mut r = *leaf;
    // Step 4.
    for p in proof {
        // 4a: a proof longer than the path to the root.
        if snode == 0 {
            return false;
        }
        // 4b: `p` is a left sibling when we are a right child, or when we
        // are the last node of an incomplete level (no right sibling there,
        // so the proof skips up to the level where one exists).
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                // `fnode == snode` and `fnode != 0` (else `snode` would be 0,
                // caught in 4a), so this loop terminates.
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        // 4c.
        fnode >>= 1;
        snode >>= 1;
    }
    // Step 5: `snode == 0` rejects a proof that stopped short of the root.
    snode == 0 && r == *root
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Leaf inputs of the certificate-transparency reference tree
    /// (merkle_tree_test.cc).
    const CT_LEAVES: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];

    /// `kSHA256Roots` from the same file: root of the first n+1 leaves.
    const CT_ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn ct_leaf_hashes() -> Vec<Hash> {
        CT_LEAVES.iter().map(|d| leaf_hash(d)).collect()
    }

    /// Straight transcription of MTH from RFC 6962 §2.1 (finding k by
    /// doubling), independent of `split_point`.
    fn naive_root(d: &[Hash]) -> Hash {
        match d.len() {
            0 => empty_root(),
            1 => d[0],
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                node_hash(&naive_root(&d[..k]), &naive_root(&d[k..]))
            }
        }
    }

    /// Straight transcription of PATH(m, D[n]) from RFC 6962 §2.1.1.
    fn naive_path(m: usize, d: &[Hash]) -> Vec<Hash> {
        let n = d.len();
        if n <= 1 {
            return Vec::new();
        }
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        if m < k {
            let mut p = naive_path(m, &d[..k]);
            p.push(naive_root(&d[k..]));
            p
        } else {
            let mut p = naive_path(m - k, &d[k..]);
            p.push(naive_root(&d[..k]));
            p
        }
    }

    #[test]
    fn empty_tree() {
        assert_eq!(
            hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(root(&[]), empty_root());
        assert_eq!(inclusion_proof(&[], 0), None);
        assert!(!verify_inclusion(&empty_root(), 0, 0, &[], &empty_root()));
    }

    #[test]
    fn ct_reference_roots() {
        let d = ct_leaf_hashes();
        for (n, expected) in (1..=8).zip(CT_ROOTS) {
            assert_eq!(hex(&root(&d[..n])), expected, "size {n}");
        }
    }

    #[test]
    fn ct_reference_inclusion_proofs() {
        // From certificate-transparency's reference inclusion-proof vectors
        // (leaf indices there are 1-based; here 0-based).
        let cases: [(usize, usize, &[&str]); 5] = [
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        let d = ct_leaf_hashes();
        for (index, size, expected) in cases {
            let proof = inclusion_proof(&d[..size], index).expect("index in range");
            let got: Vec<String> = proof.iter().map(hex).collect();
            assert_eq!(got, expected, "leaf {index} of {size}");
            let r = root(&d[..size]);
            assert!(verify_inclusion(&d[index], index as u64, size as u64, &proof, &r));
        }
    }

    #[test]
    fn root_matches_naive_reference() {
        let d: Vec<Hash> = (0u32..130).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for n in 0..=d.len() {
            assert_eq!(root(&d[..n]), naive_root(&d[..n]), "size {n}");
        }
    }

    #[test]
    fn proofs_match_naive_reference() {
        let d: Vec<Hash> = (0u32..40).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for n in 1..=d.len() {
            for m in 0..n {
                assert_eq!(
                    inclusion_proof(&d[..n], m),
                    Some(naive_path(m, &d[..n])),
                    "leaf {m} of {n}"
                );
            }
            assert_eq!(inclusion_proof(&d[..n], n), None);
        }
    }

    #[test]
    fn split_point_values() {
        let expected = [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1025, 1024)];
        for (n, k) in expected {
            assert_eq!(split_point(n), k, "n = {n}");
        }
        assert_eq!(split_point(usize::MAX), 1 << (usize::BITS - 1));
    }

    #[test]
    fn verify_handles_hostile_sizes_without_panicking() {
        let h = leaf_hash(b"x");
        let long_proof = vec![h; 200];
        for (index, size) in [
            (0, 0),
            (1, 1),
            (u64::MAX, u64::MAX),
            (u64::MAX - 1, u64::MAX),
            (0, u64::MAX),
            (u64::MAX, 0),
            (1 << 63, (1 << 63) + 1),
        ] {
            for len in [0, 1, 63, 64, 65, 200] {
                assert!(
                    !verify_inclusion(&h, index, size, &long_proof[..len], &h),
                    "index {index}, size {size}, proof of {len}"
                );
            }
        }
        // A single-leaf tree's root is the leaf itself; any non-empty proof
        // is too long.
        assert!(verify_inclusion(&h, 0, 1, &[], &h));
        assert!(!verify_inclusion(&h, 0, 1, &[h], &h));
    }

    /// Which side each sibling of leaf `m` sits on in a tree of `n` leaves,
    /// leaf-first (`true` = sibling on the left), following PATH(m, D[n]).
    /// Two (index, size) pairs with equal shapes make `verify_inclusion` do
    /// exactly the same hashing, so they are indistinguishable to it.
    fn path_shape(m: u64, n: u64) -> Vec<bool> {
        if n <= 1 {
            return Vec::new();
        }
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        let mut shape = if m < k {
            path_shape(m, k)
        } else {
            path_shape(m - k, n - k)
        };
        shape.push(m >= k);
        shape
    }

    /// A tree of 1..300 leaves. Leaves are hashes of (seed, position), so
    /// they are pairwise distinct, also after shrinking; with equal leaves a
    /// proof could legitimately verify at another index.
    fn tree() -> impl Strategy<Value = Vec<Hash>> {
        (1u64..300, any::<u64>()).prop_map(|(n, seed)| {
            (0..n)
                .map(|i| {
                    let mut data = [0u8; 16];
                    data[..8].copy_from_slice(&seed.to_be_bytes());
                    data[8..].copy_from_slice(&i.to_be_bytes());
                    leaf_hash(&data)
                })
                .collect()
        })
    }

    fn flip(h: &Hash, byte: usize, bit: u8) -> Hash {
        let mut out = *h;
        out[byte % 32] ^= 1 << (bit % 8);
        out
    }

    #[test]
    fn wrong_size_can_share_a_path_shape() {
        // Why the property test below does not demand that every wrong size
        // fail: leaf 0 has the same audit path shape in trees of 3 and 4
        // leaves, so RFC 9162 verification cannot tell them apart. The tree
        // size must be authenticated together with the root (as in a signed
        // tree head); the proof alone does not bind it.
        assert_eq!(path_shape(0, 3), path_shape(0, 4));
        let d: Vec<Hash> = (0u8..4).map(|i| leaf_hash(&[i])).collect();
        let proof = inclusion_proof(&d, 0).expect("index in range");
        let r = root(&d);
        assert!(verify_inclusion(&d[0], 0, 4, &proof, &r));
        assert!(verify_inclusion(&d[0], 0, 3, &proof, &r));
        assert!(!verify_inclusion(&d[0], 0, 5, &proof, &r));
    }

    proptest! {
        // Each case checks every index of a tree of up to 299 leaves, so keep
        // the case count modest for a 2-core debug build.
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn every_proof_verifies_and_tampering_fails(
            leaves in tree(),
            byte in 0usize..32,
            bit in 0u8..8,
            pick in any::<prop::sample::Index>(),
        ) {
            let n = leaves.len();
            let size = n as u64;
            let r = root(&leaves);
            prop_assert_eq!(r, naive_root(&leaves));
            let bad_root = flip(&r, byte, bit);
            for (i, leaf) in leaves.iter().enumerate() {
                let idx = i as u64;
                let proof = inclusion_proof(&leaves, i)
                    .ok_or_else(|| TestCaseError::fail("index in range"))?;
                prop_assert!(verify_inclusion(leaf, idx, size, &proof, &r));

                // Tampered leaf, root, or any one proof element.
                prop_assert!(!verify_inclusion(&flip(leaf, byte, bit), idx, size, &proof, &r));
                prop_assert!(!verify_inclusion(leaf, idx, size, &proof, &bad_root));
                for j in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[j] = flip(&bad[j], byte, bit);
                    prop_assert!(!verify_inclusion(leaf, idx, size, &bad, &r));
                }

                // Wrong index: distinct leaves of one tree have distinct path
                // shapes, so every other index must fail. Check a sampled one
                // and both neighbours, plus the first out-of-range index.
                for other in [pick.index(n), i.wrapping_sub(1), i + 1] {
                    if other != i && other < n {
                        prop_assert!(!verify_inclusion(leaf, other as u64, size, &proof, &r));
                    }
                }
                prop_assert!(!verify_inclusion(leaf, size, size, &proof, &r));

                // Wrong size: verification succeeds exactly when the wrong
                // size gives leaf i the same path shape (see
                // `wrong_size_can_share_a_path_shape`); otherwise it fails.
                for other_size in [size - 1, size + 1, size * 2, pick.index(n) as u64 + 1, idx] {
                    if other_size != size {
                        let same_shape = idx < other_size
                            && path_shape(idx, other_size) == path_shape(idx, size);
                        prop_assert_eq!(
                            verify_inclusion(leaf, idx, other_size, &proof, &r),
                            same_shape,
                            "leaf {} of {} checked as size {}", i, n, other_size
                        );
                    }
                }

                // Truncated and extended proofs.
                if !proof.is_empty() {
                    prop_assert!(!verify_inclusion(leaf, idx, size, &proof[..proof.len() - 1], &r));
                }
                let mut longer = proof.clone();
                longer.push(r);
                prop_assert!(!verify_inclusion(leaf, idx, size, &longer, &r));
            }
        }

        #[test]
        fn verify_never_panics(
            leaf in any::<[u8; 32]>(),
            index in any::<u64>(),
            size in any::<u64>(),
            proof in proptest::collection::vec(any::<[u8; 32]>(), 0..80),
            r in any::<[u8; 32]>(),
        ) {
            let _ = verify_inclusion(&leaf, index, size, &proof, &r);
            let _ = verify_inclusion(&leaf, index % size.max(1), size, &proof, &r);
        }
    }
}
