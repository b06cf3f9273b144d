//! The todo list kept in memory: the cache that replaces rescanning history per message.
//! Reads are O(1) (a clone of a small bounded list held behind the store).

use serde::{Deserialize, Serialize};

pub const MAX_ITEMS: usize = 256;
pub const MAX_CONTENT_CHARS: usize = 4000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TodoStatus {
    Pending,
    InProgress,
    Completed,
    Cancelled,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TodoItem {
    pub id: String,
    pub content: String,
    pub status: TodoStatus,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TodoError {
    #[error(
        "the todo list holds at most {MAX_ITEMS} items; complete or cancel some, or replace the list with merge: false"
    )]
    TooMany,
    #[error("todo item {id:?} is {len} characters long; keep each item under {MAX_CONTENT_CHARS}")]
    TooLong { id: String, len: usize },
    #[error("todo item has an empty id; give every item a short unique id")]
    EmptyId,
}

/// The session's todo list. Owned by the session; the `todo` tool mutates it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TodoStore {
    items: Vec<TodoItem>,
}

impl TodoStore {
    pub fn new(items: Vec<TodoItem>) -> Self {
        Self { items }
    }

    pub fn items(&self) -> &[TodoItem] {
        &self.items
    }

    /// `merge: false` replaces the list; `merge: true` updates items by id and appends new ones.
    /// Validates everything before changing anything, so a refused write leaves the list as it was.
    pub fn write(&mut self, todos: Vec<TodoItem>, merge: bool) -> Result<(), TodoError> {
        for item in &todos {
            if item.id.trim().is_empty() {
                return Err(TodoError::EmptyId);
            }
            let len = item.content.chars().count();
            if len > MAX_CONTENT_CHARS {
                return Err(TodoError::TooLong {
                    id: item.id.clone(),
                    len,
                });
            }
        }
        let mut next = if merge {
            self.items.clone()
        } else {
            Vec::new()
        };
        for item in todos {
            match next.iter_mut().find(|existing| existing.id == item.id) {
                Some(existing) => *existing = item,
                None => next.push(item),
            }
        }
        if next.len() > MAX_ITEMS {
            return Err(TodoError::TooMany);
        }
        self.items = next;
        Ok(())
    }

    /// One line the model reads after every todo call.
    pub fn summary(&self) -> String {
        let count = |status: TodoStatus| self.items.iter().filter(|i| i.status == status).count();
        format!(
            "{} items: {} pending, {} in progress, {} completed, {} cancelled",
            self.items.len(),
            count(TodoStatus::Pending),
            count(TodoStatus::InProgress),
            count(TodoStatus::Completed),
            count(TodoStatus::Cancelled)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, content: &str, status: TodoStatus) -> TodoItem {
        TodoItem {
            id: id.into(),
            content: content.into(),
            status,
        }
    }

    #[test]
    fn replace_and_merge() -> Result<(), TodoError> {
        let mut store = TodoStore::default();
        store.write(
            vec![
                item("1", "a", TodoStatus::Pending),
                item("2", "b", TodoStatus::Pending),
            ],
            false,
        )?;
        store.write(
            vec![
                item("2", "b", TodoStatus::Completed),
                item("3", "c", TodoStatus::InProgress),
            ],
            true,
        )?;
        let ids: Vec<&str> = store.items().iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3"]);
        assert_eq!(store.items()[1].status, TodoStatus::Completed);
        assert_eq!(
            store.summary(),
            "3 items: 1 pending, 1 in progress, 1 completed, 0 cancelled"
        );
        store.write(vec![item("9", "z", TodoStatus::Cancelled)], false)?;
        assert_eq!(store.items().len(), 1);
        Ok(())
    }

    #[test]
    fn refused_writes_change_nothing() {
        let mut store = TodoStore::new(vec![item("1", "keep", TodoStatus::Pending)]);
        let before = store.clone();
        let long = "x".repeat(MAX_CONTENT_CHARS + 1);
        assert!(matches!(
            store.write(vec![item("2", &long, TodoStatus::Pending)], true),
            Err(TodoError::TooLong { len, .. }) if len == MAX_CONTENT_CHARS + 1
        ));
        assert_eq!(
            store.write(vec![item(" ", "x", TodoStatus::Pending)], true),
            Err(TodoError::EmptyId)
        );
        let many: Vec<TodoItem> = (0..MAX_ITEMS)
            .map(|i| item(&format!("n{i}"), "x", TodoStatus::Pending))
            .collect();
        assert_eq!(store.write(many, true), Err(TodoError::TooMany));
        assert_eq!(store, before);
        // Exactly at the limits is fine.
        let full: Vec<TodoItem> = (0..MAX_ITEMS)
            .map(|i| {
                item(
                    &format!("n{i}"),
                    &"y".repeat(MAX_CONTENT_CHARS),
                    TodoStatus::Pending,
                )
            })
            .collect();
        assert!(store.write(full, false).is_ok());
    }
}
