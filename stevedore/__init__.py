"""stevedore"""
