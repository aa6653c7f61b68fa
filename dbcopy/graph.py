"""The foreign-key graph of concrete models and the order that copies every FK target first."""

from dataclasses import dataclass

from .exceptions import PlanError


def model_label(model):
    """Return 'app_label.ModelName' as dumpdata prints it."""
    return model._meta.label


@dataclass(frozen=True)
class Edge:
    """A concrete FK/O2O column of `model` whose rows must find `target` rows first."""

    model: type
    field: object
    target: type

    @property
    def nullable(self):
        return self.field.null


@dataclass(frozen=True)
class Ordering:
    """Models in copy order, the FK fields to write later, and the cycles that need deferred checks."""

    models: tuple
    deferred: dict  # model -> tuple of fields inserted as NULL, then updated
    constraint_groups: tuple  # tuples of models copied with constraint checks deferred


def dependency_edges(models):
    """Return the FK/O2O edges between the given concrete models (MTI parent links included)."""
    selected = set(models)
    edges = []
    for model in models:
        for field in model._meta.local_concrete_fields:
            if not field.is_relation or field.remote_field is None:
                continue
            target = field.remote_field.model._meta.concrete_model
            if target in selected:
                edges.append(Edge(model, field, target))
    return edges


def strongly_connected(nodes, successors):
    """Return the strongly connected components of the graph (Tarjan), each a frozenset."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        # Model graphs are a few hundred nodes deep at most, so recursion is safe here.
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in successors.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            components.append(frozenset(component))

    for node in nodes:
        if node not in index:
            visit(node)
    return components


def _has_cycle(nodes, edges):
    successors = {}
    for edge in edges:
        successors.setdefault(edge.model, []).append(edge.target)
    return any(
        len(c) > 1 or c & set(successors.get(next(iter(c)), ()))
        for c in strongly_connected(nodes, successors)
    )


def order_models(models, can_defer_constraints=lambda group: False):
    """Return models so every FK target precedes its referrers, breaking cycles at nullable FKs.

    A cycle whose edges are all NOT NULL can only be copied with constraint checks deferred;
    `can_defer_constraints(models)` says whether the destination allows that.
    """
    models = sorted(set(models), key=model_label)
    edges = dependency_edges(models)
    successors = {}
    for edge in edges:
        successors.setdefault(edge.model, []).append(edge.target)
    component_of = {}
    for component in strongly_connected(models, successors):
        for model in component:
            component_of[model] = component

    deferred, kept, groups = {}, [], []
    for component in {frozenset(c) for c in component_of.values()}:
        inner = [e for e in edges if e.model in component and e.target in component]
        if not inner:
            continue
        required = [e for e in inner if not e.nullable]
        if _has_cycle(component, required):
            members = tuple(sorted(component, key=model_label))
            if not can_defer_constraints(members):
                names = ", ".join(model_label(m) for m in members)
                raise PlanError(
                    f"Cannot order {names}: their foreign keys form a cycle with no nullable column, and "
                    "the destination cannot defer constraint checks. Make one of these foreign keys "
                    "null=True, or exclude these models with --exclude."
                )
            groups.append(members)
        else:
            for edge in inner:
                if edge.nullable:
                    deferred.setdefault(edge.model, []).append(edge.field)
    grouped = {m: g for g in groups for m in g}
    deferred_fields = {id(f) for fields in deferred.values() for f in fields}
    for edge in edges:
        in_group = edge.model in grouped and grouped[edge.model] is grouped.get(edge.target)
        if id(edge.field) not in deferred_fields and not in_group:
            kept.append(edge)

    ordered = _kahn([grouped.get(m, m) for m in models], kept, grouped)
    return Ordering(
        models=tuple(ordered),
        deferred={m: tuple(f) for m, f in deferred.items()},
        constraint_groups=tuple(groups),
    )


def _kahn(nodes, edges, grouped):
    """Topologically sort nodes (models or groups of models), ties broken by label for stable plans."""
    node_of = lambda model: grouped.get(model, model)  # noqa: E731
    unique = list(dict.fromkeys(nodes))
    pending = {node: set() for node in unique}
    for edge in edges:
        source, target = node_of(edge.model), node_of(edge.target)
        if source is not target:
            pending[source].add(target)

    def key(node):
        return model_label(node[0] if isinstance(node, tuple) else node)

    ordered, done = [], set()
    while pending:
        ready = sorted((n for n, needs in pending.items() if needs <= done), key=key)
        if not ready:  # unreachable: every remaining cycle was broken or grouped above
            raise PlanError("Internal error: foreign-key cycle left after breaking cycles")
        for node in ready:
            del pending[node]
            done.add(node)
            ordered.extend(node if isinstance(node, tuple) else (node,))
    return ordered
