/* placeholder: being written */
typedef int baton_placeholder_t;
