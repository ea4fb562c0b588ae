"""The rangers' domain: patrols, their track segments and observations (their rules
for the engine), the ranger lead's reads and reviews, effort, exports and reports."""
