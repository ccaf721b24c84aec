//! The schema model a provider declares. It is converted to the wire form in one place (the
//! server adapter) and gives the cty type every `DynamicValue` is decoded against.

use std::collections::BTreeMap;

use super::value::Type;

/// The schema of a provider block, resource, data source or ephemeral resource.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schema {
    /// Bumped when the stored state shape changes.
    pub version: i64,
    /// The top-level block.
    pub block: Block,
}

/// A block: attributes and nested blocks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Block {
    /// Attributes, in the order they are documented.
    pub attributes: Vec<Attribute>,
    /// Nested blocks.
    pub blocks: Vec<NestedBlock>,
    /// Markdown description.
    pub description: String,
    /// Whether the whole block is deprecated.
    pub deprecated: bool,
}

/// How a nested block repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    /// At most one, as an object.
    Single,
    /// Always present (absent means all attributes null), as an object.
    Group,
    /// A list of objects.
    List,
    /// A set of objects.
    Set,
    /// A map of objects, keyed by block label.
    Map,
}

/// A nested block type.
#[derive(Clone, Debug, PartialEq)]
pub struct NestedBlock {
    /// Block type name.
    pub type_name: String,
    /// Its content.
    pub block: Block,
    /// How it repeats.
    pub nesting: Nesting,
    /// Minimum count (0 for none).
    pub min_items: i64,
    /// Maximum count (0 for no limit).
    pub max_items: i64,
}

/// One attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    /// Name (`[a-z0-9_]`).
    pub name: String,
    /// Its type.
    pub ty: Type,
    /// Markdown description.
    pub description: String,
    /// Must be set in configuration.
    pub required: bool,
    /// May be set in configuration.
    pub optional: bool,
    /// Set by the provider (with `optional`: when configuration leaves it null).
    pub computed: bool,
    /// Masked in plan output.
    pub sensitive: bool,
    /// Never persisted in plan or state; the provider returns null for it everywhere.
    pub write_only: bool,
    /// Deprecated, with this message when non-empty.
    pub deprecated: Option<String>,
}

impl Attribute {
    fn new(name: &str, ty: Type) -> Self {
        Attribute {
            name: name.to_owned(),
            ty,
            description: String::new(),
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            write_only: false,
            deprecated: None,
        }
    }

    /// A required attribute.
    pub fn required(name: &str, ty: Type) -> Self {
        Attribute {
            required: true,
            ..Attribute::new(name, ty)
        }
    }

    /// An optional attribute.
    pub fn optional(name: &str, ty: Type) -> Self {
        Attribute {
            optional: true,
            ..Attribute::new(name, ty)
        }
    }

    /// A computed attribute, set by the provider only.
    pub fn computed(name: &str, ty: Type) -> Self {
        Attribute {
            computed: true,
            ..Attribute::new(name, ty)
        }
    }

    /// An optional attribute the provider fills when configuration leaves it null.
    pub fn optional_computed(name: &str, ty: Type) -> Self {
        Attribute {
            optional: true,
            computed: true,
            ..Attribute::new(name, ty)
        }
    }

    /// Sets the markdown description.
    pub fn describe(mut self, text: &str) -> Self {
        self.description = text.to_owned();
        self
    }

    /// Marks the attribute sensitive.
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Marks the attribute write-only (and sensitive).
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self.sensitive = true;
        self
    }
}

impl Block {
    /// A block of these attributes.
    pub fn of(description: &str, attributes: Vec<Attribute>) -> Self {
        Block {
            attributes,
            blocks: Vec::new(),
            description: description.to_owned(),
            deprecated: false,
        }
    }

    /// The attribute called `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// The cty object type a value of this block has on the wire.
    pub fn implied_type(&self) -> Type {
        let mut attrs: BTreeMap<String, Type> = self
            .attributes
            .iter()
            .map(|a| (a.name.clone(), a.ty.clone()))
            .collect();
        for nb in &self.blocks {
            let inner = nb.block.implied_type();
            let ty = match nb.nesting {
                Nesting::Single | Nesting::Group => inner,
                Nesting::List => Type::List(Box::new(inner)),
                Nesting::Set => Type::Set(Box::new(inner)),
                Nesting::Map => Type::Map(Box::new(inner)),
            };
            attrs.insert(nb.type_name.clone(), ty);
        }
        Type::Object(attrs)
    }
}

impl Schema {
    /// A version-0 schema of this block.
    pub fn new(block: Block) -> Self {
        Schema { version: 0, block }
    }

    /// The cty type of a value of this schema.
    pub fn implied_type(&self) -> Type {
        self.block.implied_type()
    }
}
