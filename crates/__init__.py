"""crates"""
