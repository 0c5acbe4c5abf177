"""The audited target: configuration, discovery of its layout, the code index, the audit
context, the target's interpreter and the embedded PostgreSQL."""
