"""The platform client's actions, one module per resource, behind the ``PlatformClient`` facade.

``session`` holds what every action shares (the HTTP session, reply parsing, paging through lists),
``creates`` the exactly-once creates, and ``models``, ``datasets``, ``tasks``, ``services``, ``evaluations``
and ``inference`` the actions on each resource. Every wait goes through ``runner.platform.polling``.
"""
