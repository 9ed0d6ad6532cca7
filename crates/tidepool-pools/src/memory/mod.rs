//! Browser memory measured truthfully: the PSS of a browser's whole process
//! tree (summed RSS counts shared pages once per process, several times over),
//! and the soft/hard limit policy the pool applies to it.

mod policy;
mod tree;

pub use policy::{MemoryPolicy, SoftEvent, SoftLimitTracker};
pub use tree::{
    count_of_kind, kind_of, process_memory, process_tree, tree_memory, tree_rss_bytes, Measure,
    ProcessMemory, TreeMemory,
};
