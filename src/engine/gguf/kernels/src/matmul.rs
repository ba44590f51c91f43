//! `x · Wᵀ` for packed matrices, on all cores.
//!
//! Work is spread over candle's barrier pool, whose threads spin briefly between
//! calls, so the hundreds of small matmuls of one decode step do not pay a thread
//! wake-up each.

use std::ops::Range;
use std::sync::Mutex;

use crate::packed::{ActBlock, GROUP, Packed, QuantizedRows, TileQ4, TileQ8};
use crate::simd::{GroupSums, q4_group, q8_group};

/// Activation rows per output tile of a unit of prefill work.
const ROW_BLOCK: usize = 32;
/// Row groups (of eight outputs) per unit of work.
const UNIT_GROUPS: usize = 8;
/// Row groups per unit in a single-row product: fewer, so a small matrix still
/// splits over the cores.
const UNIT_GROUPS_SINGLE: usize = 4;

/// Writes `x · Wᵀ` for every row of `x` into `out` (`x.rows * w.groups() * 8`
/// values, row-major); `tiles` is scratch space kept between calls.
pub fn q4_matmul(w: &Packed<TileQ4>, x: &QuantizedRows, tiles: &mut Vec<f32>, out: &mut [f32]) {
    packed_matmul(w, x, tiles, out, q4_rows);
}

/// The Q8_0 counterpart of [`q4_matmul`].
pub fn q8_matmul(w: &Packed<TileQ8>, x: &QuantizedRows, tiles: &mut Vec<f32>, out: &mut [f32]) {
    packed_matmul(w, x, tiles, out, q8_rows);
}

/// Computes rows `rows` of the output for row groups `groups` into `dst`, laid out
/// row by row with `(groups.len() * GROUP)` values per row.
type UnitKernel<T> = fn(&Packed<T>, &QuantizedRows, Range<usize>, Range<usize>, &mut [f32]);

fn q4_rows(
    w: &Packed<TileQ4>,
    x: &QuantizedRows,
    rows: Range<usize>,
    groups: Range<usize>,
    dst: &mut [f32],
) {
    unit_rows(w, x, rows, groups, dst, q4_group::<4>, |tiles, act| {
        q4_group::<1>(tiles, [act])[0]
    });
}

fn q8_rows(
    w: &Packed<TileQ8>,
    x: &QuantizedRows,
    rows: Range<usize>,
    groups: Range<usize>,
    dst: &mut [f32],
) {
    unit_rows(w, x, rows, groups, dst, q8_group::<4>, |tiles, act| {
        q8_group::<1>(tiles, [act])[0]
    });
}

/// Runs a unit four activation rows at a time, then the remaining rows one by one.
fn unit_rows<T>(
    w: &Packed<T>,
    x: &QuantizedRows,
    rows: Range<usize>,
    groups: Range<usize>,
    dst: &mut [f32],
    four: impl Fn(&[T], [&[ActBlock]; 4]) -> GroupSums<4>,
    one: impl Fn(&[T], &[ActBlock]) -> [f32; GROUP],
) {
    let width = groups.len() * GROUP;
    for (g, group) in groups.enumerate() {
        let tiles = w.group(group);
        let mut row = rows.start;
        while row + 4 <= rows.end {
            let sums = four(tiles, std::array::from_fn(|r| x.row(row + r)));
            for (r, lanes) in sums.iter().enumerate() {
                let at = (row - rows.start + r) * width + g * GROUP;
                dst[at..at + GROUP].copy_from_slice(lanes);
            }
            row += 4;
        }
        for row in row..rows.end {
            let at = (row - rows.start) * width + g * GROUP;
            dst[at..at + GROUP].copy_from_slice(&one(tiles, x.row(row)));
        }
    }
}

/// Splits the product into units of (activation rows, row groups), runs them on the
/// pool and moves each unit's outputs into `out`.
fn packed_matmul<T: Sync>(
    w: &Packed<T>,
    x: &QuantizedRows,
    tiles: &mut Vec<f32>,
    out: &mut [f32],
    kernel: UnitKernel<T>,
) {
    let (m, groups) = (x.rows, w.groups());
    let n = groups * GROUP;
    if m == 1 {
        // One row: every unit's output is a contiguous part of `out` already.
        let width = UNIT_GROUPS_SINGLE * GROUP;
        let parts: Vec<Mutex<&mut [f32]>> = out[..n].chunks_mut(width).map(Mutex::new).collect();
        run_parts(&parts, |index, dst| {
            let start = index * UNIT_GROUPS_SINGLE;
            let end = (start + UNIT_GROUPS_SINGLE).min(groups);
            kernel(w, x, 0..1, start..end, dst);
        });
        return;
    }
    let row_blocks = m.div_ceil(ROW_BLOCK);
    let group_blocks = groups.div_ceil(UNIT_GROUPS);
    tiles.clear();
    tiles.resize(m * n, 0.0);
    // Units in row-block-major order; unit (rb, gb) covers rows rb*ROW_BLOCK.. and
    // groups gb*UNIT_GROUPS.., and its outputs sit at the running offset.
    let mut parts = Vec::with_capacity(row_blocks * group_blocks);
    let mut rest: &mut [f32] = tiles;
    for rb in 0..row_blocks {
        let rows = rb * ROW_BLOCK..((rb + 1) * ROW_BLOCK).min(m);
        for gb in 0..group_blocks {
            let unit_groups = gb * UNIT_GROUPS..((gb + 1) * UNIT_GROUPS).min(groups);
            let len = rows.len() * unit_groups.len() * GROUP;
            let (part, tail) = rest.split_at_mut(len);
            rest = tail;
            parts.push(Mutex::new((rows.clone(), unit_groups, part)));
        }
    }
    run_parts(&parts, |_, (rows, unit_groups, dst)| {
        kernel(w, x, rows.clone(), unit_groups.clone(), dst);
    });
    for part in parts {
        let Ok((rows, unit_groups, src)) = part.into_inner() else {
            continue;
        };
        let width = unit_groups.len() * GROUP;
        for (r, row) in rows.enumerate() {
            let at = row * n + unit_groups.start * GROUP;
            out[at..at + width].copy_from_slice(&src[r * width..(r + 1) * width]);
        }
    }
}

/// Runs `f` on every part, spread over candle's barrier pool.
///
/// NOTE: the call returns only when every pool thread has checked in, and the
/// threads spin while they wait. When other processes keep the cores busy, one
/// paused thread holds up the step: decode fell from about 130 to 12 tok/s on two
/// cores while a build ran.
pub fn run_parts<P: Send>(parts: &[Mutex<P>], f: impl Fn(usize, &mut P) + Sync) {
    candle_core::utils::barrier_pool().execute_chunked(parts.len(), |range| {
        for index in range {
            // Each index goes to one worker, so a lock is taken once and never waits.
            // A panic in `f` reaches the caller through the pool.
            if let Ok(mut part) = parts[index].lock() {
                f(index, &mut part);
            }
        }
    });
}
