//! ISO9660 + Joliet + Rock Ridge + UDF images: writer and in-process reader (stub, being written).
