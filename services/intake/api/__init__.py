"""Intake's public JSON API, one module per resource: `petitions` (submit, public status),
`tracking` (the resident's actions by tracking token), `catalog` (units and categories);
`schemas` holds their models, `edge` what they share. `create_app` includes the routers."""
