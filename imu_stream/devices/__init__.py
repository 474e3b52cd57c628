"""Device codecs: firmware profiles, Movesense GSP and MetaWear bytes ⇄ commands and samples."""
