"""The code toolkit, below everything else: the AST helpers every check uses (each tree
flattened once), keyword matching, the import and call resolvers and value origin."""
