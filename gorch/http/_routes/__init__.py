"""The API's routes, one router per concern, each built around the app's :class:`Api`.

- ``service``: ``GET /health`` and ``GET /info`` (public), ``GET /me``;
- ``workflows``: the registered workflows, their descriptions and diagrams;
- ``typed``: per workflow, ``POST /workflows/{name}/instances`` and one typed operation per
  event, with its payload's and output's schemas;
- ``instances``: list, read, history, diagram and waits of instances, and the generic send;
- ``operators``: goto, pause, unpause, cancel, retry (the admin role);
- ``erasure``: ``DELETE /instances/{id}/data``, deleting personal data (the admin role);
- ``schedules``: ``GET /schedules``; ``PUT /schedules/{name}``, pause, resume and
  ``DELETE`` (the admin role);
- ``console``: the web console's static files at ``/ui/`` (public).

Every router but the public ones declares the caller dependency (``PROTECTED`` of
``gorch.http._api``), so a route added to one needs a valid token without a line of its own.
``create_app`` includes them in this order, which is the order routes are matched in.
"""
