//! Accounts: users who register and log in (issue "Users of the hub"). Their use cases will
//! live here, over an `AccountStore` port of their own; registration opens the energy account
//! through the engine like any energy command.
